output "task_definition_arn" {
  description = "The scimbridge task definition; null in lambda mode."
  value       = one(aws_ecs_task_definition.this[*].arn)
}

output "task_role_arn" {
  description = "The role scimbridge runs as (identitystore reads, the named secrets, the state volume): the task role, or the function's role in lambda mode."
  value       = local.lambda ? aws_iam_role.function[0].arn : aws_iam_role.task[0].arn
}

output "cluster_arn" {
  description = "The ECS cluster the task runs in; null in lambda mode."
  value       = local.cluster_arn
}

output "log_group_name" {
  description = "The CloudWatch log group of every run."
  value       = aws_cloudwatch_log_group.this.name
}

output "state_file_system_id" {
  description = "The EFS file system that holds the SQLite state store; null with a database URL."
  value       = one(aws_efs_file_system.state[*].id)
}

output "schedule_rule_arn" {
  description = "scheduled and lambda modes: the EventBridge rule; null in service mode."
  value       = one(aws_cloudwatch_event_rule.schedule[*].arn)
}

output "service_name" {
  description = "service mode: the ECS service; null in scheduled mode."
  value       = one(aws_ecs_service.this[*].name)
}

output "security_group_id" {
  description = "The task's or function's security group (allow it into the directory, for example LDAPS, and into the database)."
  value       = aws_security_group.task.id
}

output "function_name" {
  description = "lambda mode: the function; null otherwise."
  value       = one(aws_lambda_function.this[*].function_name)
}

output "function_url" {
  description = "lambda mode: the Function URL; webhooks POST to <url>v1/sync, signed. null otherwise."
  value       = one(aws_lambda_function_url.this[*].function_url)
}
