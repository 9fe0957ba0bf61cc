# What examples/aws allowed before every machine and pool had a role of its own. Beside main.tf, this
# override gives every role the policy that the one role all machines shared had, GetObject on every
# object of the bucket, and launch templates that leave IMDS's hop limit to AWS's default.
# TestAWSExampleLeastPrivilege plans the example with it to show that its check finds those faults.

data "aws_iam_policy_document" "machine" {
  statement {
    actions   = ["s3:GetObject"]
    resources = concat(values(local.object_arns), values(local.pool_object_arns))
  }
}

data "aws_iam_policy_document" "pool" {
  statement {
    actions   = ["s3:GetObject"]
    resources = concat(values(local.object_arns), values(local.pool_object_arns))
  }
}

resource "aws_launch_template" "machine" {
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }
}

resource "aws_launch_template" "pool" {
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }
}
