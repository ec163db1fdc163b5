# A job stead runs on any Linux machine, no Docker needed: two copies of a shell loop
# under the raw_exec driver. Run it against a dev agent:
#
#   stead job run examples/hello.nomad.hcl
#   stead job status hello
#   stead alloc logs <alloc-id>       (an ID from the status, or its first 8 characters)
job "hello" {
  type = "service"

  group "greeter" {
    count = 2

    task "say" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do echo \"hello from $NOMAD_ALLOC_NAME\"; sleep 5; done"]
      }

      resources {
        cpu    = 50
        memory = 32
      }

      logs {
        max_files     = 3
        max_file_size = 1
      }
    }
  }
}
