# scimbridge on ECS Fargate: one task definition, run either on an EventBridge schedule
# (`scimbridge sync`) or as a one-task service (`scimbridge serve`) behind an ALB for webhooks.
# The state store lives on EFS (it must outlive each task: it records which objects scimbridge
# owns); the config file is written into a task volume by a short-lived init container; secrets
# are secret references that scimbridge resolves itself with the task role.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  scheduled   = var.mode == "scheduled"
  cluster_arn = var.cluster_arn != null ? var.cluster_arn : aws_ecs_cluster.this[0].arn
  port        = 8080

  token_ref = "aws-secretsmanager://${var.scim_token_secret_arn}${var.scim_token_json_key == null ? "" : "#${var.scim_token_json_key}"}"

  environment = merge(var.environment, {
    SCIMBRIDGE_TARGET_SCIM_URL = var.scim_url
    SCIMBRIDGE_TARGET_TOKEN    = local.token_ref
    SCIMBRIDGE_TARGET_REGION   = var.region
    SCIMBRIDGE_DATA_DIR        = "/var/lib/scimbridge"
    SCIMBRIDGE_LOG_FORMAT      = "json"
    SCIMBRIDGE_SERVICE_LISTEN  = "0.0.0.0:${local.port}"
    AWS_REGION                 = var.region
    TMPDIR                     = "/var/lib/scimbridge"
    }, var.identity_store_id == null ? {} : {
    SCIMBRIDGE_TARGET_IDENTITY_STORE_ID = var.identity_store_id
    }, {
    for name, s in var.directory_secrets :
    name => "aws-secretsmanager://${s.arn}${s.json_key == null ? "" : "#${s.json_key}"}"
  })

  tags = merge(var.tags, { "app.kubernetes.io/name" = "scimbridge" })
}

resource "aws_ecs_cluster" "this" {
  count = var.cluster_arn == null ? 1 : 0
  name  = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_security_group" "task" {
  name        = "${var.name}-task"
  description = "scimbridge task: egress to SCIM, AWS APIs and the directory"
  vpc_id      = var.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to SCIM and AWS APIs, LDAP(S) to the directory, NFS to EFS"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group_rule" "alb_to_task" {
  count                    = local.scheduled ? 0 : 1
  type                     = "ingress"
  description              = "webhooks from the ALB"
  security_group_id        = aws_security_group.task.id
  source_security_group_id = var.alb_security_group_id
  protocol                 = "tcp"
  from_port                = local.port
  to_port                  = local.port
}

# The state store: one encrypted EFS file system, reached through an access point as the image's
# non-root user.
resource "aws_efs_file_system" "state" {
  creation_token = "${var.name}-state"
  encrypted      = true
  tags           = merge(local.tags, { Name = "${var.name}-state" })
}

resource "aws_efs_access_point" "state" {
  file_system_id = aws_efs_file_system.state.id
  tags           = local.tags

  posix_user {
    uid = 65532
    gid = 65532
  }

  root_directory {
    path = "/scimbridge"

    creation_info {
      owner_uid   = 65532
      owner_gid   = 65532
      permissions = "0700"
    }
  }
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-efs"
  description = "scimbridge state store: NFS from the task only"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "NFS from the scimbridge task"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [aws_security_group.task.id]
  }
}

resource "aws_efs_mount_target" "state" {
  for_each        = toset(var.subnet_ids)
  file_system_id  = aws_efs_file_system.state.id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs.id]
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "config"
  }

  volume {
    name = "state"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.state.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.state.id
        iam             = "ENABLED"
      }
    }
  }

  container_definitions = jsonencode([
    {
      name       = "config"
      image      = var.config_writer_image
      essential  = false
      user       = "65532:65532"
      entryPoint = ["sh", "-c"]
      command    = ["printf '%s' \"$SCIMBRIDGE_CONFIG_YAML\" > /etc/scimbridge/scimbridge.yaml"]
      environment = [
        { name = "SCIMBRIDGE_CONFIG_YAML", value = var.config_yaml },
      ]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/scimbridge", readOnly = false },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "config"
        }
      }
    },
    {
      name                   = "scimbridge"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      command                = [local.scheduled ? "sync" : "serve", "--config", "/etc/scimbridge/scimbridge.yaml"]
      dependsOn = [
        { containerName = "config", condition = "SUCCESS" },
      ]
      environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
      portMappings = local.scheduled ? [] : [
        { containerPort = local.port, protocol = "tcp" },
      ]
      healthCheck = local.scheduled ? null : {
        command     = ["/scimbridge", "healthcheck"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/scimbridge", readOnly = true },
        { sourceVolume = "state", containerPath = "/var/lib/scimbridge", readOnly = false },
      ]
      linuxParameters = {
        capabilities = { drop = ["ALL"] }
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "scimbridge"
        }
      }
    },
  ])
}

# scheduled mode: EventBridge runs the task. It does not wait for the previous run to end; a run
# that starts while another holds the state lock (a file lock on EFS) exits 4 without writing, so
# keep the schedule above a run's duration (the log group shows each run's time) to avoid gaps.
resource "aws_cloudwatch_event_rule" "schedule" {
  count               = local.scheduled ? 1 : 0
  name                = var.name
  description         = "Run scimbridge sync"
  schedule_expression = var.schedule_expression
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  count    = local.scheduled ? 1 : 0
  rule     = aws_cloudwatch_event_rule.schedule[0].name
  arn      = local.cluster_arn
  role_arn = aws_iam_role.events[0].arn

  ecs_target {
    task_definition_arn = aws_ecs_task_definition.this.arn
    task_count          = 1
    launch_type         = "FARGATE"
    platform_version    = "LATEST"

    network_configuration {
      subnets          = var.subnet_ids
      security_groups  = [aws_security_group.task.id]
      assign_public_ip = var.assign_public_ip
    }
  }
}

# service mode: one task, never two (one writer of the state store): a deployment stops the old
# task before it starts the new one.
resource "aws_ecs_service" "this" {
  count                              = local.scheduled ? 0 : 1
  name                               = var.name
  cluster                            = local.cluster_arn
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  health_check_grace_period_seconds  = 60
  propagate_tags                     = "SERVICE"
  tags                               = local.tags

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this[0].arn
    container_name   = "scimbridge"
    container_port   = local.port
  }

  depends_on = [aws_lb_listener_rule.webhooks]
}

resource "aws_lb_target_group" "this" {
  count       = local.scheduled ? 0 : 1
  name        = substr(var.name, 0, 32)
  port        = local.port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  tags        = local.tags

  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 30
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "webhooks" {
  count        = local.scheduled ? 0 : 1
  listener_arn = var.alb_listener_arn
  priority     = var.listener_rule_priority
  tags         = local.tags

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }

  condition {
    path_pattern {
      values = var.webhook_path_patterns
    }
  }
}
