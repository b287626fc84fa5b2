variable "bucket" {
  description = "Name of the S3 bucket the log is kept in (Object Lock is turned on when it is made)"
  type        = string
}

variable "prefix" {
  description = "Prefix of the log in the bucket, as in s3://BUCKET/PREFIX (Stele writes under PREFIX/log/)"
  type        = string
  default     = ""
}

variable "region" {
  description = "AWS region of the bucket"
  type        = string
  default     = "us-east-1"
}

variable "default_retention_days" {
  description = "The bucket's default COMPLIANCE retention, for objects written without their own (Stele sets its own on every full tile and bundle)"
  type        = number
  default     = 1
}

variable "public_read" {
  description = "Let anyone read the log from the bucket (a static tlog-tiles endpoint for auditors and witnesses)"
  type        = bool
  default     = false
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's OIDC provider, for the nodes' service account (IRSA); empty: the role is for EC2"
  type        = string
  default     = ""
}

variable "namespace" {
  description = "Kubernetes namespace of the nodes' service account 'stele' (with oidc_provider_arn)"
  type        = string
  default     = "stele"
}
