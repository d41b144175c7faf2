# lambda mode: scimbridge as a Lambda function from the same image (`scimbridge lambda`). An
# EventBridge schedule runs a sync; a Function URL takes the signed webhooks (POST /v1/sync, the
# HMAC signature or bearer token checked by scimbridge, so the URL itself has no IAM auth). The
# state is in PostgreSQL (database_url_secret_arn): one run at a time through its leader lock, and
# a run that would outlast the timeout stops 60 s before it, recording how far it got; the next
# scheduled invocation continues from there. The function runs in the VPC's subnets to reach the
# database and the directory.

locals {
  # The config file travels in an environment variable (a function has no init container).
  # Lambda limits all of a function's variables together to 4 KB.
  function_environment = merge(local.environment, {
    SCIMBRIDGE_CONFIG_YAML = var.config_yaml
  })
}

resource "aws_lambda_function" "this" {
  count         = local.lambda ? 1 : 0
  function_name = var.name
  role          = aws_iam_role.function[0].arn
  package_type  = "Image"
  image_uri     = var.image
  timeout       = var.lambda_timeout
  memory_size   = var.lambda_memory_size
  architectures = ["x86_64"]
  tags          = local.tags

  image_config {
    command = ["lambda", "--stop-margin", "60s"]
  }

  environment {
    variables = local.function_environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.task.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  lifecycle {
    precondition {
      condition     = local.shared_state
      error_message = "The lambda mode keeps its state in PostgreSQL: set database_url_secret_arn."
    }
  }

  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_function_url" "this" {
  count              = local.lambda ? 1 : 0
  function_name      = aws_lambda_function.this[0].function_name
  authorization_type = "NONE"
}

# A Function URL without IAM auth needs both grants (since October 2025); the second only for
# invocations through the URL, so nobody may invoke the function directly with made-up events.
resource "aws_lambda_permission" "url" {
  count                  = local.lambda ? 1 : 0
  statement_id           = "FunctionURLAllowPublicAccess"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this[0].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "url_invoke" {
  count                    = local.lambda ? 1 : 0
  statement_id             = "FunctionURLAllowInvokeAction"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this[0].function_name
  principal                = "*"
  invoked_via_function_url = true
}

resource "aws_cloudwatch_event_target" "function" {
  count = local.lambda ? 1 : 0
  rule  = aws_cloudwatch_event_rule.schedule[0].name
  arn   = aws_lambda_function.this[0].arn

  # A failed run is not retried by EventBridge: the next schedule runs again.
  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 300
  }
}

resource "aws_lambda_permission" "schedule" {
  count         = local.lambda ? 1 : 0
  statement_id  = "AllowTheSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[0].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[0].arn
}

# EventBridge invokes asynchronously: Lambda itself would retry a failed invocation twice.
resource "aws_lambda_function_event_invoke_config" "this" {
  count                  = local.lambda ? 1 : 0
  function_name          = aws_lambda_function.this[0].function_name
  maximum_retry_attempts = 0
}
