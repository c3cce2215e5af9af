#include "tests/support/child_process.h"

#include <sys/wait.h>

#include <csignal>
#include <thread>

#include "tests/support/broker_process.h"

namespace runnel::testing {

child_process::child_process(const std::vector<std::string>& argv) : pid_(spawn_process(argv, -1, -1, -1)) {}

child_process::~child_process() {
  if (pid_ > 0) kill9();
}

void child_process::kill9() {
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int child_process::wait(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int child_process::term() {
  ::kill(pid_, SIGTERM);
  const int status = wait(std::chrono::seconds(10));
  if (status == -1) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace runnel::testing
