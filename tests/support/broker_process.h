#pragma once
// broker_process: a real runnel-broker child on 127.0.0.1 (or where a
// --listen in `extra_args` says) with an ephemeral port, its data in a
// directory the test owns. Started with --shards 2, through `launcher`
// when given (argv before the broker's: netns_network::launcher).
// The destructor kills it (SIGKILL) and reaps it by PID if still running.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace runnel::testing {

class broker_process {
 public:
  // `extra_env`: "NAME=value" entries added to the test's environment.
  explicit broker_process(std::filesystem::path data_dir, std::vector<std::string> extra_args = {},
                          const std::vector<std::string>& extra_env = {},
                          const std::vector<std::string>& launcher = {});
  ~broker_process();
  broker_process(const broker_process&) = delete;             // owns a child process
  broker_process& operator=(const broker_process&) = delete;  // owns a child process
  broker_process(broker_process&&) = delete;                  // tests keep it on the stack
  broker_process& operator=(broker_process&&) = delete;       // tests keep it on the stack

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string bootstrap() const { return host_ + ":" + std::to_string(port_); }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // SIGTERM and wait; returns the exit status (0 for a clean shutdown).
  int stop();
  // SIGKILL and wait.
  void kill9();

 private:
  pid_t pid_ = -1;
  std::string host_;
  std::uint16_t port_ = 0;
};

// Runs a command to completion (bounded by `timeout_s`), feeding `input` to
// its stdin; returns exit code and stdout/stderr.
struct command_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};
command_result run_command(const std::vector<std::string>& argv, const std::string& input = {}, int timeout_s = 60);

// Starts argv[0] (an absolute path) with the given fds as stdin/stdout/stderr
// (-1: inherit) and the test's environment plus `extra_env` ("NAME=value");
// the child is SIGKILLed if the test process dies.
pid_t spawn_process(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
                    const std::vector<std::string>& extra_env = {});

}  // namespace runnel::testing
