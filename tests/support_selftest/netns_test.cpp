// netns_network's own tests: a host's link cut is silent (a connect to it
// neither succeeds nor is refused: it times out) and heal() brings it back,
// judged by TCP connects from the test's namespace to a listener inside the
// host's. Root only (../shared/MACHINE.md).
#include "tests/support/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <doctest/doctest.h>
#include <string>
#include <thread>

#include "tests/support/eventually.h"
#include "tests/support/broker_process.h"

using namespace std::chrono_literals;
using runnel::testing::netns_network;

namespace {

enum class reach { connected, refused, timed_out };

// A non-blocking connect to address:port, waited for up to `limit`.
reach try_connect(const std::string& address, std::uint16_t port, std::chrono::milliseconds limit) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
  reach r = reach::timed_out;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    r = reach::connected;
  } else if (errno == EINPROGRESS) {
    pollfd p{s, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      r = err == 0 ? reach::connected : reach::refused;
    }
  } else {
    r = reach::refused;
  }
  ::close(s);
  return r;
}

// A listening socket on `address`:`port` inside namespace `ns` (made by a
// thread that entered it: a socket stays in the namespace it was made in).
int listen_in(const std::string& ns, const std::string& address, std::uint16_t port) {
  int fd = -1;
  std::thread([&] {
    const int nsfd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) return;
    ::close(nsfd);
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
      ::close(fd);
      fd = -1;
    }
  }).join();
  return fd;
}

}  // namespace

TEST_CASE("netns: a cut link is silent (a connect times out, never refused) and heal() brings the host back") {
  REQUIRE_MESSAGE(netns_network::available(), "network namespaces need root and iproute2 (../shared/MACHINE.md)");
  std::string ns;
  {
    netns_network net(1);
    REQUIRE_MESSAGE(net.ready(), net.error());
    ns = net.launcher(1).back();
    const int listener = listen_in(ns, net.address(1), 7700);
    REQUIRE(listener >= 0);
    CHECK(try_connect(net.address(1), 7700, 2s) == reach::connected);
    // Negative control: a port nothing listens on is refused, not timed
    // out, so the check below can tell the two apart.
    CHECK(try_connect(net.address(1), 7701, 2s) == reach::refused);

    net.cut(1);
    CHECK(try_connect(net.address(1), 7700, 1500ms) == reach::timed_out);
    CHECK(try_connect(net.address(1), 7701, 1500ms) == reach::timed_out);  // not even a RST gets out

    net.heal(1);
    CHECK(runnel::testing::eventually([&] { return try_connect(net.address(1), 7700, 1s) == reach::connected; }, 10s));
    ::close(listener);
  }
  // Gone with the network: its namespace.
  auto r = runnel::testing::run_command({"/bin/sh", "-c", "ip netns list"});
  CHECK(r.out.find(ns + " ") == std::string::npos);
  CHECK(r.out.find(ns + "\n") == std::string::npos);
}
