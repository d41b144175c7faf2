output "task_definition_arn" {
  description = "The scimbridge task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "task_role_arn" {
  description = "The role scimbridge runs as (identitystore reads, the named secrets, the state volume)."
  value       = aws_iam_role.task.arn
}

output "cluster_arn" {
  description = "The ECS cluster the task runs in."
  value       = local.cluster_arn
}

output "log_group_name" {
  description = "The CloudWatch log group of every run."
  value       = aws_cloudwatch_log_group.this.name
}

output "state_file_system_id" {
  description = "The EFS file system that holds the state store."
  value       = aws_efs_file_system.state.id
}

output "schedule_rule_arn" {
  description = "scheduled mode: the EventBridge rule; null in service mode."
  value       = one(aws_cloudwatch_event_rule.schedule[*].arn)
}

output "service_name" {
  description = "service mode: the ECS service; null in scheduled mode."
  value       = one(aws_ecs_service.this[*].name)
}

output "security_group_id" {
  description = "The task's security group (allow it into the directory, for example LDAPS)."
  value       = aws_security_group.task.id
}
