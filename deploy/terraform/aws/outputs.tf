output "bucket" {
  description = "For --tiles or --mirror: s3://<bucket>/<prefix>"
  value       = "s3://${aws_s3_bucket.log.bucket}${var.prefix == "" ? "" : "/${trimsuffix(var.prefix, "/")}"}"
}

output "node_role_arn" {
  description = "The role the nodes run as (the eks.amazonaws.com/role-arn annotation of their service account)"
  value       = aws_iam_role.nodes.arn
}

output "log_url" {
  description = "The log's static tlog-tiles endpoint (readable by anyone with public_read): stele verify --url <this> --vkey <key>"
  value       = "https://${aws_s3_bucket.log.bucket_regional_domain_name}${var.prefix == "" ? "" : "/${trimsuffix(var.prefix, "/")}"}"
}
