variable "name" {
  description = "Name of every resource the module creates (and the prefix of their names)."
  type        = string
  default     = "scimbridge"
}

variable "mode" {
  description = "scheduled: an EventBridge schedule runs `scimbridge sync` as a task. service: an ECS service runs `scimbridge serve` behind an ALB listener for webhooks (two replicas with a database URL). lambda: a Lambda function run by an EventBridge schedule and a Function URL for webhooks (needs a database URL)."
  type        = string
  default     = "scheduled"

  validation {
    condition     = contains(["scheduled", "service", "lambda"], var.mode)
    error_message = "The mode must be scheduled, service or lambda."
  }
}

variable "database_url_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the PostgreSQL URL of the state store (postgres://user:password@host:5432/db?sslmode=verify-full), for example of an RDS or Aurora database; scimbridge reads it through aws-secretsmanager:// as state.url. null: an SQLite file on EFS (ECS only). Required by the lambda mode; the service mode then runs two replicas."
  type        = string
  default     = null
}

variable "database_url_json_key" {
  description = "The JSON key of the URL when the database secret is a JSON object; null when the secret is the URL itself."
  type        = string
  default     = null
}

variable "lambda_timeout" {
  description = "lambda mode: the function's timeout in seconds (at most 900). A run that would not finish in it stops 60 s before the end, records how far it got, and the next scheduled invocation continues."
  type        = number
  default     = 900

  validation {
    condition     = var.lambda_timeout >= 120 && var.lambda_timeout <= 900
    error_message = "The lambda_timeout must be between 120 and 900 seconds."
  }
}

variable "lambda_memory_size" {
  description = "lambda mode: the function's memory in MiB (CPU grows with it)."
  type        = number
  default     = 1024
}

variable "image" {
  description = "The scimbridge image, pinned by tag or digest (for example 123456789012.dkr.ecr.eu-west-1.amazonaws.com/scimbridge:1.2.3)."
  type        = string
}

variable "config_yaml" {
  description = "The scimbridge config file (deploy/CONFIG.md), without secrets: they come from the secret variables below. Keys set by the module through SCIMBRIDGE_* variables (target, data_dir, service.listen) win over it."
  type        = string
}

variable "scim_url" {
  description = "The Identity Center SCIM endpoint, https://scim.REGION.amazonaws.com/TENANT/scim/v2."
  type        = string

  validation {
    condition     = can(regex("^https://", var.scim_url))
    error_message = "The scim_url must be an https URL."
  }
}

variable "scim_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the SCIM access token. scimbridge reads it through aws-secretsmanager:// on use (cached for a minute), so a rotated token needs no restart."
  type        = string
}

variable "scim_token_json_key" {
  description = "The JSON key of the token when the secret is a JSON object; null when the secret is the token itself."
  type        = string
  default     = null
}

variable "directory_secrets" {
  description = "Directory credentials in Secrets Manager, by the SCIMBRIDGE_* variable of the config key they fill: { SCIMBRIDGE_SOURCE_LDAP_BIND_PASSWORD = { arn = \"arn:...\", json_key = \"password\" } }."
  type = map(object({
    arn      = string
    json_key = optional(string)
  }))
  default = {}
}

variable "identity_store_id" {
  description = "The identity store (d-xxxxxxxxxx) read in bulk through the identitystore API; the task role may read this store only. null: reads go through SCIM."
  type        = string
  default     = null
}

variable "manage_access" {
  description = "Let the task role change access: create, update and delete permission sets and account assignments (the config's access: section). false: it may only read the organization and the instance's access."
  type        = bool
  default     = false
}

variable "region" {
  description = "The region of the Identity Center instance (and of the identitystore API)."
  type        = string
}

variable "environment" {
  description = "More environment variables of the scimbridge container (SCIMBRIDGE_* overrides, no secrets)."
  type        = map(string)
  default     = {}
}

variable "cluster_arn" {
  description = "The ECS cluster to run in; null creates one."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets of the task (and of the EFS mount targets that hold the state store); they need a route to the SCIM endpoint, Secrets Manager and the directory."
  type        = list(string)
}

variable "vpc_id" {
  description = "The VPC of the subnets."
  type        = string
}

variable "assign_public_ip" {
  description = "Give the task a public IP (only for subnets without a NAT gateway)."
  type        = bool
  default     = false
}

variable "schedule_expression" {
  description = "When the scheduled mode runs a sync (EventBridge rate() or cron())."
  type        = string
  default     = "rate(1 hour)"
}

variable "alb_listener_arn" {
  description = "service mode: the HTTPS listener of an existing ALB that forwards the webhook paths to the task."
  type        = string
  default     = null
}

variable "alb_security_group_id" {
  description = "service mode: the ALB's security group, allowed to reach the task's port."
  type        = string
  default     = null
}

variable "webhook_path_patterns" {
  description = "service mode: the paths the ALB forwards (only the webhooks; the status page and /metrics stay private)."
  type        = list(string)
  default     = ["/v1/*"]
}

variable "listener_rule_priority" {
  description = "service mode: the priority of the listener rule."
  type        = number
  default     = 100
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 512
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the logs."
  type        = number
  default     = 30
}

variable "config_writer_image" {
  description = "A small image with a shell that writes config_yaml into the task's config volume before scimbridge starts (the scimbridge image has no shell)."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.37"
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
