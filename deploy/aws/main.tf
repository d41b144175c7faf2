# scimbridge on AWS, in one of three modes: on ECS Fargate, one task definition run either on an
# EventBridge schedule (`scimbridge sync`) or as a service (`scimbridge serve`) behind an ALB for
# webhooks; or as a Lambda function (lambda.tf) run by an EventBridge schedule and a Function URL.
# The state store must outlive each task (it records which objects scimbridge owns): an SQLite
# file on EFS, or PostgreSQL (RDS, Aurora) when database_url_secret_arn is given, which lets the
# service run two replicas (one leader, one follower) and is required by the Lambda mode. On ECS
# the config file is written into a task volume by a short-lived init container; secrets are
# secret references that scimbridge resolves itself with its role.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  scheduled = var.mode == "scheduled"
  service   = var.mode == "service"
  lambda    = var.mode == "lambda"
  ecs       = !local.lambda
  # PostgreSQL holds the state when a database URL is given; else an SQLite file on EFS (ECS only).
  shared_state = var.database_url_secret_arn != null
  efs          = local.ecs && !local.shared_state
  # Two replicas need the shared state: one leads, the other follows and takes over within seconds.
  replicas    = local.shared_state ? 2 : 1
  cluster_arn = local.ecs ? (var.cluster_arn != null ? var.cluster_arn : aws_ecs_cluster.this[0].arn) : null
  port        = 8080

  token_ref = "aws-secretsmanager://${var.scim_token_secret_arn}${var.scim_token_json_key == null ? "" : "#${var.scim_token_json_key}"}"

  # A Lambda function may write only under /tmp.
  data_dir = local.lambda ? "/tmp/scimbridge" : "/var/lib/scimbridge"

  environment = merge(var.environment, {
    SCIMBRIDGE_TARGET_SCIM_URL = var.scim_url
    SCIMBRIDGE_TARGET_TOKEN    = local.token_ref
    SCIMBRIDGE_TARGET_REGION   = var.region
    SCIMBRIDGE_DATA_DIR        = local.data_dir
    SCIMBRIDGE_LOG_FORMAT      = "json"
    TMPDIR                     = local.lambda ? "/tmp" : local.data_dir
    }, local.lambda ? {} : {
    SCIMBRIDGE_SERVICE_LISTEN = "0.0.0.0:${local.port}"
    AWS_REGION                = var.region
    }, var.identity_store_id == null ? {} : {
    SCIMBRIDGE_TARGET_IDENTITY_STORE_ID = var.identity_store_id
    }, !local.shared_state ? {} : {
    SCIMBRIDGE_STATE_URL = "aws-secretsmanager://${var.database_url_secret_arn}${var.database_url_json_key == null ? "" : "#${var.database_url_json_key}"}"
    }, {
    for name, s in var.directory_secrets :
    name => "aws-secretsmanager://${s.arn}${s.json_key == null ? "" : "#${s.json_key}"}"
  })

  tags = merge(var.tags, { "app.kubernetes.io/name" = "scimbridge" })
}

resource "aws_ecs_cluster" "this" {
  count = local.ecs && var.cluster_arn == null ? 1 : 0
  name  = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.lambda ? "/aws/lambda/${var.name}" : "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_security_group" "task" {
  name        = "${var.name}-task"
  description = "scimbridge task or function: egress to SCIM, AWS APIs, the database and the directory"
  vpc_id      = var.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to SCIM and AWS APIs, LDAP(S) to the directory, NFS to EFS, PostgreSQL"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group_rule" "alb_to_task" {
  count                    = local.service ? 1 : 0
  type                     = "ingress"
  description              = "webhooks from the ALB"
  security_group_id        = aws_security_group.task.id
  source_security_group_id = var.alb_security_group_id
  protocol                 = "tcp"
  from_port                = local.port
  to_port                  = local.port
}

# The SQLite state store (without a database URL): one encrypted EFS file system, reached through
# an access point as the image's non-root user.
resource "aws_efs_file_system" "state" {
  count          = local.efs ? 1 : 0
  creation_token = "${var.name}-state"
  encrypted      = true
  tags           = merge(local.tags, { Name = "${var.name}-state" })
}

resource "aws_efs_access_point" "state" {
  count          = local.efs ? 1 : 0
  file_system_id = aws_efs_file_system.state[0].id
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
  count       = local.efs ? 1 : 0
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
  for_each        = local.efs ? toset(var.subnet_ids) : toset([])
  file_system_id  = aws_efs_file_system.state[0].id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs[0].id]
}

resource "aws_ecs_task_definition" "this" {
  count                    = local.ecs ? 1 : 0
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution[0].arn
  task_role_arn            = aws_iam_role.task[0].arn
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

    dynamic "efs_volume_configuration" {
      for_each = local.efs ? [1] : []

      content {
        file_system_id     = aws_efs_file_system.state[0].id
        transit_encryption = "ENABLED"

        authorization_config {
          access_point_id = aws_efs_access_point.state[0].id
          iam             = "ENABLED"
        }
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
      healthCheck = local.service ? {
        command     = ["/scimbridge", "healthcheck"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      } : null
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

# scheduled mode: EventBridge runs the task (lambda mode: the function, lambda.tf). It does not
# wait for the previous run to end; a run that starts while another holds the state lock (a file
# lock on EFS, or PostgreSQL's leader lock) exits 4 (a function: does nothing) without writing, so
# keep the schedule above a run's duration (the log group shows each run's time) to avoid gaps.
resource "aws_cloudwatch_event_rule" "schedule" {
  count               = local.scheduled || local.lambda ? 1 : 0
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
    task_definition_arn = aws_ecs_task_definition.this[0].arn
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

# service mode. With SQLite on EFS: one task, never two (one writer of the state store), and a
# deployment stops the old task before it starts the new one. With PostgreSQL: two tasks, one
# leader (it holds the database's leader lock and syncs) and one follower (it serves the status
# page and records webhooks for the leader); a deployment replaces them one at a time, and the
# follower takes over within the lease (under 20 s) when the leader's task stops or dies.
resource "aws_ecs_service" "this" {
  count                              = local.service ? 1 : 0
  name                               = var.name
  cluster                            = local.cluster_arn
  task_definition                    = aws_ecs_task_definition.this[0].arn
  desired_count                      = local.replicas
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = local.shared_state ? 50 : 0
  deployment_maximum_percent         = local.shared_state ? 200 : 100
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

# Both replicas take webhooks: a follower records a signed request in the database and the leader
# runs it, so the target group checks /healthz, not leadership.
resource "aws_lb_target_group" "this" {
  count       = local.service ? 1 : 0
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
  count        = local.service ? 1 : 0
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
