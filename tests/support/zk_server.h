#pragma once
// zk_server: a real ZooKeeper server (Debian's `zookeeper` package, run with
// java) on a free port of 127.0.0.1 (or of `host`, an address of a network
// the test made: netns_network's hub) with its own data directory, for tests.
// Started in the constructor (ready when it answers "ruok"), killed by PID
// in the destructor; stop() and start() again keep port and data.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace runnel::testing {

// A 127.0.0.1 port nothing listens on (bound, then released).
std::uint16_t free_port();

class zk_server {
 public:
  explicit zk_server(std::filesystem::path dir, std::string host = "127.0.0.1");
  ~zk_server();
  zk_server(const zk_server&) = delete;             // owns a process
  zk_server& operator=(const zk_server&) = delete;  // owns a process
  zk_server(zk_server&&) = delete;                  // tests keep it on the stack
  zk_server& operator=(zk_server&&) = delete;       // tests keep it on the stack

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string connect_string() const { return host_ + ":" + std::to_string(port_); }
  [[nodiscard]] pid_t pid() const { return pid_; }  // for SIGSTOP/SIGCONT

  void start();  // waits until it serves (bounded: 60 s)
  void stop();   // SIGKILL and wait

 private:
  std::filesystem::path dir_;
  std::string host_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// True when Debian's ZooKeeper server and java are installed.
bool zk_server_available();

}  // namespace runnel::testing
