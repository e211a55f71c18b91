# A transforming Firehose stream as Terraform writes it, against the firehose-kit emulator: an execution role, an
# aws_lambda_function from a zip, a bucket, a delivery role allowed to invoke the function, and the stream with a
# Lambda processor; and a Glue database and table (the schema a converting stream would read). Driven by
# tests/it/compat.rs (`make test-compat`): apply, plan without drift, change the code
# and the configuration, apply, destroy.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}

variable "endpoint" { type = string }
variable "prefix" { type = string }
variable "timeout" { type = number }

provider "aws" {
  region                      = "us-east-2"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    firehose = var.endpoint
    s3       = var.endpoint
    iam      = var.endpoint
    sts      = var.endpoint
    logs     = var.endpoint
    lambda   = var.endpoint
    glue     = var.endpoint
  }
}

resource "aws_iam_role" "exec" {
  name               = "tf-transform-exec"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }] })
}

resource "aws_lambda_function" "transform" {
  function_name    = "tf-transform"
  role             = aws_iam_role.exec.arn
  handler          = "handler.handler"
  runtime          = "python3.12"
  filename         = "function.zip"
  source_code_hash = filebase64sha256("function.zip")
  timeout          = var.timeout
  environment {
    variables = { PREFIX = var.prefix }
  }
  tags = { team = "data" }
}

resource "aws_s3_bucket" "out" {
  bucket        = "tf-transform"
  force_destroy = true
}

resource "aws_iam_role" "delivery" {
  name               = "tf-transform-delivery"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "firehose.amazonaws.com" }, Action = "sts:AssumeRole" }] })
}

resource "aws_iam_role_policy" "delivery" {
  role = aws_iam_role.delivery.id
  policy = jsonencode({ Version = "2012-10-17", Statement = [
    { Effect = "Allow", Action = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"], Resource = [aws_s3_bucket.out.arn, "${aws_s3_bucket.out.arn}/*"] },
    { Effect = "Allow", Action = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], Resource = [aws_lambda_function.transform.arn, "${aws_lambda_function.transform.arn}:*"] },
    { Effect = "Allow", Action = ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"], Resource = ["*"] },
  ] })
}

resource "aws_kinesis_firehose_delivery_stream" "transformed" {
  name        = "tf-transformed"
  destination = "extended_s3"
  extended_s3_configuration {
    role_arn            = aws_iam_role.delivery.arn
    bucket_arn          = aws_s3_bucket.out.arn
    buffering_interval  = 60
    error_output_prefix = "errors/!{firehose:error-output-type}/"
    processing_configuration {
      enabled = true
      processors {
        type = "Lambda"
        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = "${aws_lambda_function.transform.arn}:$LATEST"
        }
      }
    }
  }
  depends_on = [aws_iam_role_policy.delivery]
}

resource "aws_glue_catalog_database" "logs" {
  name = "tf_logs"
  tags = { team = "data" }
}

resource "aws_glue_catalog_table" "apache" {
  name          = "apache"
  database_name = aws_glue_catalog_database.logs.name
  table_type    = "EXTERNAL_TABLE"
  parameters    = { classification = "parquet" }
  storage_descriptor {
    location      = "s3://${aws_s3_bucket.out.bucket}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    columns {
      name = "host"
      type = "string"
    }
    columns {
      name = "status"
      type = "int"
    }
    columns {
      name = "time"
      type = "timestamp"
    }
  }
}

# A converting stream: JSON records written as Parquet typed by the Glue table above.
resource "aws_kinesis_firehose_delivery_stream" "parquet" {
  name        = "tf-parquet"
  destination = "extended_s3"
  extended_s3_configuration {
    role_arn            = aws_iam_role.delivery.arn
    bucket_arn          = aws_s3_bucket.out.arn
    prefix              = "parquet/"
    error_output_prefix = "errors/!{firehose:error-output-type}/"
    buffering_size      = 64
    buffering_interval  = 60
    data_format_conversion_configuration {
      input_format_configuration {
        deserializer {
          open_x_json_ser_de {}
        }
      }
      output_format_configuration {
        serializer {
          parquet_ser_de {
            compression = "SNAPPY"
          }
        }
      }
      schema_configuration {
        database_name = aws_glue_catalog_table.apache.database_name
        table_name    = aws_glue_catalog_table.apache.name
        role_arn      = aws_iam_role.delivery.arn
      }
    }
  }
  depends_on = [aws_iam_role_policy.delivery]
}
