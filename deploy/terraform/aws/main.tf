# The S3 bucket a Stele log is kept in with Object Lock (COMPLIANCE mode), and the IAM policy its
# nodes need: for `stele serve --mirror s3://BUCKET/PREFIX` (embedded) or
# `stele serve --postgres … --tiles s3://BUCKET/PREFIX` (several nodes). See docs/operations.md.
#
#   terraform init && terraform apply -var bucket=acme-audit-log
#
# Stele locks each full tile and entry bundle itself, for `--s3-retain` (default: the policy's
# longest keep). The bucket's default retention below is a floor for anything else written there.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

resource "aws_s3_bucket" "log" {
  bucket = var.bucket
  # Object Lock can only be turned on when the bucket is made; it turns versioning on for good.
  object_lock_enabled = true
  # A bucket holding locked objects cannot be deleted before they expire anyway; say so.
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "log" {
  bucket = aws_s3_bucket.log.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "log" {
  bucket = aws_s3_bucket.log.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.default_retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.log]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "log" {
  bucket = aws_s3_bucket.log.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}

# The log is public by design (leaves are sealed, the checkpoint signed), but whether anyone may
# read it straight from the bucket is yours to decide: set public_read to serve it as a static
# tlog-tiles endpoint for auditors and witnesses.
resource "aws_s3_bucket_public_access_block" "log" {
  bucket                  = aws_s3_bucket.log.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = !var.public_read
  restrict_public_buckets = !var.public_read
}

locals {
  log_prefix = var.prefix == "" ? "log" : "${trimsuffix(var.prefix, "/")}/log"
  # Partial tiles and bundles (tile/<L>/<N>.p/<W>) are written unlocked and deleted once their
  # tile is full; nothing else is ever deleted.
  partials = [
    "${aws_s3_bucket.log.arn}/${local.log_prefix}/tile/*.p/*",
  ]
}

resource "aws_s3_bucket_policy" "log" {
  bucket = aws_s3_bucket.log.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid       = "TLSOnly"
          Effect    = "Deny"
          Principal = "*"
          Action    = "s3:*"
          Resource  = [aws_s3_bucket.log.arn, "${aws_s3_bucket.log.arn}/*"]
          Condition = { Bool = { "aws:SecureTransport" = "false" } }
        },
        {
          # Locked versions cannot be deleted anyway (COMPLIANCE); this also keeps anyone but
          # Stele's nodes (administrators included) from adding versions, which S3 accepts over a
          # locked key, or deleting the unlocked partials and checkpoint.
          Sid       = "OnlySteleWrites"
          Effect    = "Deny"
          Principal = "*"
          Action    = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:PutObjectLegalHold"]
          Resource  = "${aws_s3_bucket.log.arn}/*"
          Condition = { ArnNotEquals = { "aws:PrincipalArn" = aws_iam_role.nodes.arn } }
        },
      ],
      var.public_read ? [
        {
          Sid       = "PublicRead"
          Effect    = "Allow"
          Principal = "*"
          Action    = "s3:GetObject"
          Resource  = "${aws_s3_bucket.log.arn}/${local.log_prefix}/*"
        },
        {
          # Without it S3 answers a missing key (a partial tile deleted once its tile is full) 403,
          # not the 404 a verifier reads as "gone, use the full tile".
          Sid       = "PublicList"
          Effect    = "Allow"
          Principal = "*"
          Action    = "s3:ListBucket"
          Resource  = aws_s3_bucket.log.arn
          Condition = { StringLike = { "s3:prefix" = ["${local.log_prefix}/*"] } }
        },
      ] : [],
    )
  })
  depends_on = [aws_s3_bucket_public_access_block.log]
}

# What a Stele node may do: write tiles, bundles and checkpoints with their locks, read and list
# them (the mirror compares what is there), and delete only partials.
data "aws_iam_policy_document" "nodes" {
  statement {
    sid       = "ReadTheBucket"
    actions   = ["s3:GetBucketObjectLockConfiguration", "s3:ListBucket", "s3:ListBucketVersions"]
    resources = [aws_s3_bucket.log.arn]
  }
  statement {
    sid = "WriteTheLog"
    actions = [
      "s3:PutObject",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:PutObjectRetention",
      "s3:PutObjectLegalHold",
    ]
    resources = ["${aws_s3_bucket.log.arn}/${local.log_prefix}/*"]
  }
  statement {
    sid       = "DropPartials"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = local.partials
  }
  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "nodes" {
  name   = "${var.bucket}-stele-nodes"
  policy = data.aws_iam_policy_document.nodes.json
}

# The role the nodes run as: on EKS through IRSA (set oidc_provider_arn), else assumed by EC2.
data "aws_iam_policy_document" "assume" {
  dynamic "statement" {
    for_each = var.oidc_provider_arn == "" ? [] : [1]
    content {
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [var.oidc_provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${replace(var.oidc_provider_arn, "/^.*oidc-provider\\//", "")}:sub"
        values   = ["system:serviceaccount:${var.namespace}:stele"]
      }
    }
  }
  dynamic "statement" {
    for_each = var.oidc_provider_arn == "" ? [1] : []
    content {
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = ["ec2.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "nodes" {
  name               = "${var.bucket}-stele-nodes"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "nodes" {
  role       = aws_iam_role.nodes.name
  policy_arn = aws_iam_policy.nodes.arn
}
