// Resource limits and hostile clients against a real broker: connection
// caps refuse at accept, announced-but-unsent frames cost little memory,
// a started frame must finish in time, and a client that reads nothing
// cannot make the broker buffer without bound. Judged by what a client
// sees (refusals, answers) and the broker's RSS from /proc.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/support/batches.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;
using namespace std::chrono_literals;

namespace {

// A connected TCP socket to 127.0.0.1:port from `source` (any 127.x.y.z).
int open_from(const char* source, std::uint16_t port) {
  const int fd = connect_loopback(port, source);
  REQUIRE(fd >= 0);
  return fd;
}

// Whether the broker closed `fd` within `limit` (end-of-stream or reset).
bool closed_within(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
  char b;
  return ::recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

struct fds {
  std::vector<int> v;
  ~fds() {
    for (int fd : v) ::close(fd);
  }
};

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

std::string read_log(const temp_dir& dir) {
  std::ifstream in(dir / "data.broker.log");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A Metadata request answered on a fresh SDK connection: the broker serves.
bool serves(const broker_process& b) {
  admin_config ac;
  ac.bootstrap = b.bootstrap();
  ac.timeout = 5s;
  auto a = admin::connect(ac);
  return a.has_value() && (*a)->list_topics().has_value();
}

std::vector<std::byte> metadata_frame(std::uint32_t correlation_id) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateMetadataRequest(fbb);
  return request_frame(fbb, wire::Request::MetadataRequest, body.Union(), {}, 1, correlation_id);
}

}  // namespace

TEST_CASE("limits: max.connections refuses at accept with a log line, the broker keeps serving, a freed slot is taken again") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "max.connections=20"});
  fds held;
  for (int i = 0; i < 20; ++i) held.v.push_back(open_from("127.0.0.1", b.port()));
  for (int fd : held.v) CHECK_FALSE(closed_within(fd, 200ms));
  const int over = open_from("127.0.0.1", b.port());  // the kernel accepts it; the broker closes it
  CHECK(closed_within(over, 5s));
  ::close(over);
  CHECK(read_log(dir).find("max.connections reached") != std::string::npos);
  // Held ones still work.
  raw_client probe_fd_owner(b.port());  // refused as well: every slot is held
  CHECK(probe_fd_owner.closed_by_peer(5000));
  const auto frame = metadata_frame(1);
  REQUIRE(::send(held.v[0], frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size()));
  pollfd p{held.v[0], POLLIN, 0};
  CHECK(::poll(&p, 1, 5000) == 1);
  // Free ten slots: new connections are served again.
  for (int i = 0; i < 10; ++i) ::close(held.v[i]);
  held.v.erase(held.v.begin(), held.v.begin() + 10);
  CHECK(eventually([&] { return serves(b); }, 10s));
}

TEST_CASE("limits: max.connections.per.ip counts each client address on its own") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "max.connections.per.ip=5"});
  fds held;
  for (int i = 0; i < 5; ++i) held.v.push_back(open_from("127.0.0.2", b.port()));
  const int over = open_from("127.0.0.2", b.port());
  CHECK(closed_within(over, 5s));
  ::close(over);
  CHECK(read_log(dir).find("max.connections.per.ip reached") != std::string::npos);
  const int other = open_from("127.0.0.3", b.port());  // another address: its own five
  CHECK_FALSE(closed_within(other, 500ms));
  ::close(other);
  CHECK(serves(b));  // from 127.0.0.1
  for (int fd : held.v) CHECK_FALSE(closed_within(fd, 200ms));
}

TEST_CASE("limits: 10,000 idle connections, and the broker still serves (its memory reported)") {
  rlimit lim{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  lim.rlim_cur = lim.rlim_max;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
  // The broker takes the same hard limit; leave room for its own files.
  const long want = std::min<long>(10'000, static_cast<long>(lim.rlim_max) - 1'000);
  REQUIRE_MESSAGE(want >= 1'000, "hard open files limit " << lim.rlim_max << " is too low for this test");
  temp_dir dir;
  broker_process b(dir / "data");
  {
    admin_config ac;
    ac.bootstrap = b.bootstrap();
    REQUIRE((*admin::connect(ac))->create_topic("t", 2, 1).has_value());
  }
  const long before = rss_kib(b.pid());
  fds held;
  for (long i = 0; i < want; ++i) held.v.push_back(open_from("127.0.0.1", b.port()));
  std::this_thread::sleep_for(1s);  // accepted and set up
  const long with = rss_kib(b.pid());
  MESSAGE(want << " idle connections: broker RSS " << before / 1024 << " MiB -> " << with / 1024 << " MiB ("
               << (with - before) * 1024 / want << " bytes per connection)");
  CHECK_FALSE(closed_within(held.v.back(), 200ms));
  CHECK_FALSE(closed_within(held.v.front(), 200ms));
  // Still serving: records produced and read back through the SDK.
  producer_config pc;
  pc.bootstrap = b.bootstrap();
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  for (int i = 0; i < 100; ++i) (*p)->send_to("t", 0, std::nullopt, "v" + std::to_string(i), {}, nullptr);
  REQUIRE((*p)->flush(20s).has_value());
  consumer_config cc;
  cc.bootstrap = b.bootstrap();
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{"t", 0}}).has_value());
  std::size_t got = 0;
  for (int i = 0; i < 50 && got < 100; ++i) {
    auto batch = (*c)->poll(200ms);
    if (batch) got += batch->size();
  }
  CHECK(got == 100);
  CHECK(with - before < 1024L * 1024);  // under 1 GiB for them all
}

TEST_CASE("limits: 200 connections announcing frames near max.request.bytes and trickling: broker memory stays bounded") {
  temp_dir dir;
  // 16 MiB frames: allocated whole from the length prefix that would be 3.2 GB.
  broker_process b(dir / "data", {"--set", "max.request.bytes=16777216"});
  const long before = rss_kib(b.pid());
  fds held;
  std::vector<std::byte> head(8);
  const std::uint32_t length = (16U << 20) - 1024;
  const std::uint32_t envelope = 64;
  std::memcpy(head.data(), &length, 4);
  std::memcpy(head.data() + 4, &envelope, 4);
  const std::vector<std::byte> dribble(100, std::byte{0});
  for (int i = 0; i < 200; ++i) {
    const int fd = open_from("127.0.0.1", b.port());
    held.v.push_back(fd);
    REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == 8);
  }
  for (int round = 0; round < 5; ++round) {
    for (int fd : held.v) [[maybe_unused]] auto n = ::send(fd, dribble.data(), dribble.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(200ms);
  }
  const long with = rss_kib(b.pid());
  MESSAGE("200 trickling 16 MiB frames: broker RSS " << before / 1024 << " MiB -> " << with / 1024 << " MiB");
  CHECK(with - before < 256L * 1024);
  CHECK(serves(b));
}

TEST_CASE("limits: a frame started and not finished within request.read.timeout.ms closes that connection only") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "request.read.timeout.ms=1000"});
  raw_client slow(b.port());
  const auto frame = metadata_frame(1);
  const auto start = std::chrono::steady_clock::now();
  // The head and a few bytes, then one byte every 200 ms: never complete.
  slow.send(std::span(frame).first(10));
  bool closed = false;
  for (std::size_t i = 10; i + 1 < frame.size() && !closed && std::chrono::steady_clock::now() - start < 10s; ++i) {
    std::this_thread::sleep_for(200ms);
    slow.send(std::span(frame).subspan(i, 1));
    closed = slow.closed_by_peer(1);
  }
  closed = closed || slow.closed_by_peer(5000);
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - start >= 900ms);
  CHECK(read_log(dir).find("request.read.timeout.ms") != std::string::npos);
  // A client sending whole frames slowly (idle between them) is not closed.
  raw_client steady(b.port());
  for (std::uint32_t i = 0; i < 4; ++i) {
    steady.send(metadata_frame(i));
    REQUIRE(steady.read().has_value());
    std::this_thread::sleep_for(600ms);
  }
}

TEST_CASE("limits: a client that sends requests and reads no answers: the broker stops reading it, memory bounded") {
  temp_dir dir;
  broker_process b(dir / "data");
  {
    admin_config ac;
    ac.bootstrap = b.bootstrap();
    REQUIRE((*admin::connect(ac))->create_topic("t", 1, 1).has_value());
    producer_config pc;
    pc.bootstrap = b.bootstrap();
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    const std::string value(1000, 'x');
    for (int i = 0; i < 4'000; ++i) (*p)->send_to("t", 0, std::nullopt, value, {}, nullptr);
    REQUIRE((*p)->flush(20s).has_value());
  }
  const long before = rss_kib(b.pid());
  // Fetches of 1 MiB each, pipelined without ever reading an answer.
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::FetchPartition>> parts{wire::CreateFetchPartition(fbb, 0, 0, 1 << 20)};
  std::vector<flatbuffers::Offset<wire::FetchTopic>> topics{wire::CreateFetchTopicDirect(fbb, "t", &parts)};
  auto body = wire::CreateFetchRequestDirect(fbb, 0, 1, 1 << 20, &topics);
  const auto frame = request_frame(fbb, wire::Request::FetchRequest, body.Union());
  const int fd = open_from("127.0.0.1", b.port());
  fds held{{fd}};
  // Small buffers both ways, so back pressure shows within the bound
  // whatever the kernel's autotuning would have given.
  int bufsize = 64 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
  long sent = 0;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 3s && sent < 1'000'000) {
    const ssize_t n = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(frame.size())) {
      ++sent;
      continue;
    }
    if (n > 0) {  // finish this frame, blocking briefly
      std::size_t off = static_cast<std::size_t>(n);
      while (off < frame.size() && std::chrono::steady_clock::now() - start < 3s) {
        const ssize_t m = ::send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (m > 0) off += static_cast<std::size_t>(m);
        else std::this_thread::sleep_for(1ms);
      }
      ++sent;
      continue;
    }
    std::this_thread::sleep_for(10ms);  // the broker stopped reading: TCP pushes back
  }
  const long with = rss_kib(b.pid());
  MESSAGE(sent << " fetch requests sent, none of their answers read: broker RSS " << before / 1024 << " MiB -> "
               << with / 1024 << " MiB");
  // At most max.inflight.requests.per.connection (256) in the broker, the
  // rest in the two small socket buffers: back pressure, not a 3 s stream.
  CHECK(sent < 20'000);
  CHECK(with - before < 256L * 1024);
  CHECK(serves(b));
}
