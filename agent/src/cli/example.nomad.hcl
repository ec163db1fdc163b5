# An example job for stead, written by `stead job init`.
#
# A job is the unit you submit: it names task groups, each a set of tasks placed together
# on one client node. Edit it, check it with `stead job validate example.nomad.hcl`, and
# see the job stead would store with `stead job run -output example.nomad.hcl`.

# Variables make one file serve several environments:
#   stead job run -var environment=prod example.nomad.hcl
variable "environment" {
  type        = string
  default     = "dev"
  description = "dev or prod: prod runs more copies with more memory"

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "The environment must be dev or prod."
  }
}

locals {
  is_prod = var.environment == "prod"
}

job "example" {
  # Where the job may run. "*" means every datacenter.
  datacenters = ["*"]

  # service: long-running; batch: runs to completion; system / sysbatch: one per node.
  type = "service"

  # How a new version replaces the running one: one allocation at a time, each healthy
  # for 10 s before the next, rolled back automatically if the update fails.
  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  group "cache" {
    count = local.is_prod ? 3 : 1

    network {
      port "db" {
        to = 6379
      }
    }

    # Restart a failed task in place up to twice in 30 minutes, then fail the allocation
    # so the scheduler can place it elsewhere.
    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    task "redis" {
      driver = "docker"

      config {
        image = "redis:7"
        ports = ["db"]
      }

      # Runtime values such as ${NOMAD_PORT_db} are kept as written and filled in on the
      # client when the task starts.
      env {
        REDIS_PORT = "${NOMAD_PORT_db}"
      }

      resources {
        cpu    = 500
        memory = local.is_prod ? 1024 : 256
      }
    }
  }
}
