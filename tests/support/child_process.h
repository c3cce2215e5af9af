#pragma once
// child_process: a real helper process a test starts (argv[0] an absolute
// path, stdio inherited). The destructor kills it (SIGKILL) and reaps it
// by PID if it still runs; it is SIGKILLed too if the test process dies.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace runnel::testing {

class child_process {
 public:
  explicit child_process(const std::vector<std::string>& argv);
  ~child_process();
  child_process(const child_process&) = delete;             // owns a process
  child_process& operator=(const child_process&) = delete;  // owns a process
  child_process(child_process&&) = delete;                  // tests keep it in place
  child_process& operator=(child_process&&) = delete;       // tests keep it in place

  [[nodiscard]] pid_t pid() const { return pid_; }
  void kill9();
  // Waits up to `limit` for it to end: its wait status, or -1 if it runs on.
  int wait(std::chrono::milliseconds limit);
  // SIGTERM and wait up to 10 s: its exit code, -1 if a signal ended it,
  // -2 if it did not end.
  int term();

 private:
  pid_t pid_ = -1;
};

}  // namespace runnel::testing
