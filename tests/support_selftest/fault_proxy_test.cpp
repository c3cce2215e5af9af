// The fault proxy's own tests: each fault does to real TCP connections what
// its comment says, judged by what an echo server received and what the
// client read back.
#include "tests/support/fault_proxy.h"
#include "tests/support/raw_client.h"
#include "tests/support/eventually.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <doctest/doctest.h>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using runnel::testing::fault_proxy;

namespace {

// Echoes every byte back on 127.0.0.1; counts what it received.
class echo_server {
 public:
  echo_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~echo_server() {
    stop_ = true;
    thread_.join();
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  echo_server(const echo_server&) = delete;
  echo_server& operator=(const echo_server&) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] long received() const { return received_.load(); }

 private:
  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int c : conns_) fds.push_back({c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) conns_.push_back(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fds[i].fd);
          std::erase(conns_, fds[i].fd);
          continue;
        }
        received_ += n;
        [[maybe_unused]] auto w = ::send(fds[i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
      }
    }
  }
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<long> received_{0};
  std::vector<int> conns_;
  std::thread thread_;
};

int connect_to(std::uint16_t port) {
  const int fd = runnel::testing::connect_loopback(port);
  REQUIRE(fd >= 0);
  return fd;
}

// What arrives on `fd` within `limit`: "" for nothing, "<eof>" for a clean
// close, "<reset>" for a reset.
std::string read_within(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return "";
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n == 0) return "<eof>";
  if (n < 0) return errno == ECONNRESET ? "<reset>" : "<error>";
  return {buf, static_cast<std::size_t>(n)};
}

void say(int fd, const std::string& s) { REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); }

// Sends `s` and whether the same bytes come back within 2 s.
bool echoed(int fd, const std::string& s) {
  say(fd, s);
  return read_within(fd, 2s) == s;
}

}  // namespace

TEST_CASE("fault proxy: pass forwards both ways and counts the bytes") {
  echo_server echo;
  fault_proxy proxy(echo.port());
  const int fd = connect_to(proxy.port());
  CHECK(echoed(fd, "hello"));
  // The counters are updated after the write the client already read.
  CHECK(runnel::testing::eventually([&] { return proxy.stats().bytes_down == 5; }, 2s));
  auto st = proxy.stats();
  CHECK(st.connections == 1);
  CHECK(st.bytes_up == 5);
  CHECK(st.bytes_down == 5);
  ::close(fd);
}

TEST_CASE("fault proxy: drop_responses delivers the request, loses the answer, and closes that connection when healed") {
  echo_server echo;
  fault_proxy proxy(echo.port());
  const int fd = connect_to(proxy.port());
  REQUIRE(echoed(fd, "warm"));
  proxy.set_fault(fault_proxy::fault::drop_responses);
  say(fd, "request");
  CHECK(read_within(fd, 400ms).empty());  // the answer never comes
  CHECK(echo.received() == 11);           // but the server got the request
  CHECK(runnel::testing::eventually([&] { return proxy.stats().dropped_down == 7; }, 2s));
  proxy.heal();
  CHECK(read_within(fd, 2s) == "<eof>");  // its byte stream is broken: closed
  ::close(fd);
  const int again = connect_to(proxy.port());
  CHECK(echoed(again, "after"));
  ::close(again);
}

TEST_CASE("fault proxy: blackhole holds bytes and new connections, and both flow when healed") {
  echo_server echo;
  fault_proxy proxy(echo.port());
  const int fd = connect_to(proxy.port());
  REQUIRE(echoed(fd, "one"));
  proxy.set_fault(fault_proxy::fault::blackhole);
  say(fd, "two");
  const int fresh = connect_to(proxy.port());  // accepted, not connected onwards
  say(fresh, "three");
  CHECK(read_within(fd, 400ms).empty());
  CHECK(read_within(fresh, 100ms).empty());
  CHECK(echo.received() == 3);  // nothing reached the server
  proxy.heal();
  CHECK(read_within(fd, 2s) == "two");
  CHECK(read_within(fresh, 2s) == "three");
  ::close(fd);
  ::close(fresh);
}

TEST_CASE("fault proxy: refuse resets open and new connections") {
  echo_server echo;
  fault_proxy proxy(echo.port());
  const int fd = connect_to(proxy.port());
  REQUIRE(echoed(fd, "x"));
  proxy.set_fault(fault_proxy::fault::refuse);
  CHECK(read_within(fd, 2s) == "<reset>");
  ::close(fd);
  const int fresh = connect_to(proxy.port());  // the kernel accepts; the proxy resets it
  CHECK(read_within(fresh, 2s) == "<reset>");
  ::close(fresh);
  CHECK(runnel::testing::eventually([&] { return proxy.stats().reset == 2; }, 2s));
  proxy.heal();
  const int healed = connect_to(proxy.port());
  CHECK(echoed(healed, "y"));
  ::close(healed);
}

TEST_CASE("fault proxy: delay holds each chunk for the set time both ways") {
  echo_server echo;
  fault_proxy proxy(echo.port());
  proxy.set_delay(150ms);
  const int fd = connect_to(proxy.port());
  const auto t0 = std::chrono::steady_clock::now();
  say(fd, "slow");
  CHECK(read_within(fd, 100ms).empty());
  CHECK(read_within(fd, 2s) == "slow");
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  ::close(fd);
}

TEST_CASE("fault proxy: a target that is down closes the connection, and set_target moves new ones") {
  fault_proxy proxy(1);  // nothing listens on port 1
  const int fd = connect_to(proxy.port());
  CHECK(read_within(fd, 2s) == "<eof>");
  ::close(fd);
  echo_server echo;
  proxy.set_target(echo.port());
  const int moved = connect_to(proxy.port());
  CHECK(echoed(moved, "z"));
  ::close(moved);
}
