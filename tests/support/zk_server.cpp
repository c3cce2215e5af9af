#include "tests/support/zk_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "schemas/assert.h"
#include "tests/support/broker_process.h"

namespace runnel::testing {

namespace {

constexpr const char* java = "/usr/bin/java";
constexpr const char* zk_jar = "/usr/share/java/zookeeper.jar";

// ZooKeeper's four-letter "ruok" -> "imok".
bool answers_ruok(const std::string& host, std::uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  bool ok = false;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::write(s, "ruok", 4) == 4) {
    pollfd p{s, POLLIN, 0};
    char buf[8] = {};
    ok = ::poll(&p, 1, 1000) > 0 && ::read(s, buf, 4) == 4 && std::string(buf, 4) == "imok";
  }
  ::close(s);
  return ok;
}

}  // namespace

std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  RUNNEL_ASSERT(s >= 0, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  RUNNEL_ASSERT(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "bind");
  socklen_t len = sizeof a;
  RUNNEL_ASSERT(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0, "getsockname");
  ::close(s);
  return ntohs(a.sin_port);
}

bool zk_server_available() { return ::access(java, X_OK) == 0 && ::access(zk_jar, R_OK) == 0; }

zk_server::zk_server(std::filesystem::path dir, std::string host)
    : dir_(std::move(dir)), host_(std::move(host)), port_(free_port()) {
  std::filesystem::create_directories(dir_ / "data");
  std::ofstream cfg(dir_ / "zoo.cfg");
  cfg << "tickTime=500\n"  // minimum session timeout 1 s, maximum 10 s
      << "dataDir=" << (dir_ / "data").string() << "\n"
      << "clientPort=" << port_ << "\n"
      << "clientPortAddress=" << host_ << "\n"
      << "admin.enableServer=false\n"
      << "4lw.commands.whitelist=ruok\n"
      << "maxSessionTimeout=10000\n";
  cfg.close();
  start();
}

zk_server::~zk_server() { stop(); }

void zk_server::start() {
  if (pid_ > 0) return;
  const std::string log = (dir_ / "zookeeper.log").string();
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = spawn_process({java, "-Xmx256m", "-cp", "/usr/share/java/*:/etc/zookeeper/conf",
                        "org.apache.zookeeper.server.ZooKeeperServerMain", (dir_ / "zoo.cfg").string()},
                       -1, out, out);
  if (out >= 0) ::close(out);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!answers_ruok(host_, port_)) {
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      throw std::runtime_error("ZooKeeper did not start; see " + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void zk_server::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace runnel::testing
