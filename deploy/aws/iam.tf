# Least privilege: scimbridge's role (the task role, or the function's role) reads one identity
# store, the named secrets (the database URL included) and its state volume, and the organization
# and Identity Center's access (it changes access only with manage_access); the execution role
# pulls the image and writes the logs; EventBridge may only run this task. The function's role
# also writes its log group and manages the network interfaces Lambda needs in the VPC.

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  # The secrets scimbridge reads, as Secrets Manager ARNs (a JSON key is not part of the ARN).
  secret_arns = distinct(concat([var.scim_token_secret_arn], [for s in values(var.directory_secrets) : s.arn],
  local.shared_state ? [var.database_url_secret_arn] : []))

  # identitystore authorizes each read on the store and on the user, group and membership it
  # touches; those ARNs carry no store id, so the store condition is what keeps reads to one store.
  identity_store_resources = var.identity_store_id == null ? [] : [
    "arn:${local.partition}:identitystore::${local.account}:identitystore/${var.identity_store_id}",
    "arn:${local.partition}:identitystore:::user/*",
    "arn:${local.partition}:identitystore:::group/*",
    "arn:${local.partition}:identitystore:::membership/*",
  ]
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "task" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = local.tags
}

# What scimbridge itself does, on ECS and on Lambda.
data "aws_iam_policy_document" "scimbridge" {
  statement {
    sid       = "ReadTheNamedSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }

  dynamic "statement" {
    for_each = var.identity_store_id == null ? [] : [1]

    content {
      sid = "ReadOneIdentityStore"
      actions = [
        "identitystore:DescribeGroup",
        "identitystore:DescribeGroupMembership",
        "identitystore:DescribeUser",
        "identitystore:GetGroupId",
        "identitystore:GetGroupMembershipId",
        "identitystore:GetUserId",
        "identitystore:IsMemberInGroups",
        "identitystore:ListGroupMemberships",
        "identitystore:ListGroupMembershipsForMember",
        "identitystore:ListGroups",
        "identitystore:ListUsers",
      ]
      resources = local.identity_store_resources

      condition {
        test     = "StringEquals"
        variable = "identitystore:IdentityStoreId"
        values   = [var.identity_store_id]
      }
    }
  }

  # The access section (permission sets and account assignments): the reads of the organization
  # and of the Identity Center instance, always (scimbridge access explain and dry runs need them;
  # a config without access: makes none of these calls) ...
  statement {
    sid = "ReadAccess"
    actions = [
      "organizations:DescribeOrganization",
      "organizations:ListAccountsForParent",
      "organizations:ListOrganizationalUnitsForParent",
      "organizations:ListRoots",
      "organizations:ListTagsForResource",
      "sso:DescribeAccountAssignmentCreationStatus",
      "sso:DescribeAccountAssignmentDeletionStatus",
      "sso:DescribePermissionSet",
      "sso:DescribePermissionSetProvisioningStatus",
      "sso:GetInlinePolicyForPermissionSet",
      "sso:ListAccountAssignmentCreationStatus",
      "sso:ListAccountAssignmentDeletionStatus",
      "sso:ListAccountAssignmentsForPrincipal",
      "sso:ListAccountsForProvisionedPermissionSet",
      "sso:ListCustomerManagedPolicyReferencesInPermissionSet",
      "sso:ListInstances",
      "sso:ListManagedPoliciesInPermissionSet",
      "sso:ListPermissionSets",
      "sso:ListTagsForResource",
    ]
    resources = ["*"]
  }

  # ... and, with manage_access, the writes: permission sets and their policies, assignments, and
  # the provisioning that Identity Center does with the caller's rights in its own account (the
  # roles under aws-reserved/sso.amazonaws.com and the AWSSSO_ SAML provider).
  dynamic "statement" {
    for_each = var.manage_access ? [1] : []

    content {
      sid = "ManageAccess"
      actions = [
        "sso:AttachCustomerManagedPolicyReferenceToPermissionSet",
        "sso:AttachManagedPolicyToPermissionSet",
        "sso:CreateAccountAssignment",
        "sso:CreatePermissionSet",
        "sso:DeleteAccountAssignment",
        "sso:DeleteInlinePolicyFromPermissionSet",
        "sso:DeletePermissionSet",
        "sso:DetachCustomerManagedPolicyReferenceFromPermissionSet",
        "sso:DetachManagedPolicyFromPermissionSet",
        "sso:ProvisionPermissionSet",
        "sso:PutInlinePolicyToPermissionSet",
        "sso:TagResource",
        "sso:UntagResource",
        "sso:UpdatePermissionSet",
      ]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.manage_access ? [1] : []

    content {
      sid = "ProvisionAccessInThisAccount"
      actions = [
        "iam:AttachRolePolicy",
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:GetRole",
        "iam:GetSAMLProvider",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:PutRolePolicy",
        "iam:UpdateRole",
        "iam:UpdateRoleDescription",
      ]
      resources = [
        "arn:${local.partition}:iam::${local.account}:role/aws-reserved/sso.amazonaws.com/*",
        "arn:${local.partition}:iam::${local.account}:saml-provider/AWSSSO_*",
      ]
    }
  }
}

data "aws_iam_policy_document" "task" {
  source_policy_documents = [data.aws_iam_policy_document.scimbridge.json]

  dynamic "statement" {
    for_each = local.efs ? [1] : []

    content {
      sid = "UseTheStateVolume"
      actions = [
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientWrite",
      ]
      resources = [aws_efs_file_system.state[0].arn]

      condition {
        test     = "StringEquals"
        variable = "elasticfilesystem:AccessPointArn"
        values   = [aws_efs_access_point.state[0].arn]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  count  = local.ecs ? 1 : 0
  name   = "scimbridge"
  role   = aws_iam_role.task[0].id
  policy = data.aws_iam_policy_document.task.json
}

resource "aws_iam_role" "execution" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = ["*"]
  }

  statement {
    sid       = "WriteTheLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  count  = local.ecs ? 1 : 0
  name   = "scimbridge-execution"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "assume_events" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "events" {
  count              = local.scheduled ? 1 : 0
  name               = "${var.name}-schedule"
  assume_role_policy = data.aws_iam_policy_document.assume_events.json
  tags               = local.tags
}

data "aws_iam_policy_document" "events" {
  count = local.scheduled ? 1 : 0

  statement {
    sid       = "RunThisTask"
    actions   = ["ecs:RunTask"]
    resources = ["${aws_ecs_task_definition.this[0].arn_without_revision}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "PassItsRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task[0].arn, aws_iam_role.execution[0].arn]
  }
}

resource "aws_iam_role_policy" "events" {
  count  = local.scheduled ? 1 : 0
  name   = "scimbridge-schedule"
  role   = aws_iam_role.events[0].id
  policy = data.aws_iam_policy_document.events[0].json
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "function" {
  count              = local.lambda ? 1 : 0
  name               = "${var.name}-function"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = local.tags
}

data "aws_iam_policy_document" "function" {
  source_policy_documents = [data.aws_iam_policy_document.scimbridge.json]

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # Lambda attaches the function to the subnets (to reach the database and the directory) through
  # network interfaces it makes with the function's role; these actions take no resource ARN.
  statement {
    sid = "AttachToTheVPC"
    actions = [
      "ec2:AssignPrivateIpAddresses",
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "function" {
  count  = local.lambda ? 1 : 0
  name   = "scimbridge-function"
  role   = aws_iam_role.function[0].id
  policy = data.aws_iam_policy_document.function.json
}
