// The SDK with more than one broker: bootstrap lists, routing requests to
// partition leaders from Metadata, and following a leader that moves.
// A fake broker (below) answers Metadata naming the real runnel-broker as
// the leader, or itself, and refuses data requests with NOT_LEADER or
// FENCED_LEADER_EPOCH the way a broker that lost leadership does.

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "client/src/address.h"
#include "client/src/cluster_view.h"
#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "schemas/frame.h"
#include "schemas/protocol_generated.h"
#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/zk_server.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::free_port;
using runnel::testing::run_command;
using runnel::testing::temp_dir;

namespace {

std::string local(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

// A broker that leads nothing: answers Metadata for one topic with the
// leader the test sets (itself, the real broker, or none), DescribeConfigs
// with no configs, and refuses Produce and Fetch (and ListOffsets when told)
// with `refusal`; each refusal moves the leadership to the real broker, as
// an election would. One thread per connection, blocking sockets.
class fake_broker {
 public:
  fake_broker(std::int32_t id, std::int32_t real_id, std::uint16_t real_port, std::string topic,
              std::int32_t partitions)
      : id_(id),
        real_id_(real_id),
        real_port_(real_port),
        topic_(std::move(topic)),
        partitions_(partitions) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    leader = real_id;
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~fake_broker() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& t : connections_) t.join();
    ::close(listen_fd_);
  }
  fake_broker(const fake_broker&) = delete;             // owns threads and sockets
  fake_broker& operator=(const fake_broker&) = delete;  // owns threads and sockets
  fake_broker(fake_broker&&) = delete;                  // its threads hold `this`
  fake_broker& operator=(fake_broker&&) = delete;       // its threads hold `this`

  [[nodiscard]] std::uint16_t port() const { return port_; }

  std::atomic<std::int32_t> leader;        // of every partition of the topic; -1: none
  std::atomic<int> leaderless_answers{0};  // this many Metadata answers say leader -1 first
  std::atomic<wire::ErrorCode> refusal{wire::ErrorCode::NOT_LEADER};
  std::atomic<bool> refuse_list_offsets{false};  // else ListOffsets answers offset 0
  std::atomic<int> metadata{0}, produces{0}, fetches{0}, list_offsets{0};

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      connections_.emplace_back([this, fd] { serve(fd); });
    }
  }

  bool read_exact(int fd, std::byte* p, std::size_t n) {
    while (n > 0) {
      pollfd pf{fd, POLLIN, 0};
      const int ready = ::poll(&pf, 1, 50);
      if (stop_) return false;
      if (ready <= 0) continue;
      const ssize_t r = ::recv(fd, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }

  void serve(int fd) {
    while (true) {
      std::array<std::byte, schemas::frame_head_size> head_bytes{};
      if (!read_exact(fd, head_bytes.data(), head_bytes.size())) break;
      auto head = schemas::decode_frame_head(head_bytes, 1U << 24);
      if (!head) break;
      std::vector<std::byte> body(head->body_size());
      if (!read_exact(fd, body.data(), body.size())) break;
      auto env = schemas::verify_request(body, *head);
      if (!env) break;
      auto frame = answer(**env);
      std::size_t done = 0;
      while (done < frame.size()) {
        const ssize_t n = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
    }
    ::close(fd);
  }

  // A refusal: the next Metadata names the real broker.
  wire::ErrorCode refuse() {
    leader = real_id_;
    return refusal.load();
  }

  std::vector<std::byte> answer(const wire::RequestEnvelope& req) {
    flatbuffers::FlatBufferBuilder fbb;
    wire::Response type = wire::Response::NONE;
    flatbuffers::Offset<void> body;
    switch (req.body_type()) {
      case wire::Request::MetadataRequest: {
        ++metadata;
        std::vector<flatbuffers::Offset<wire::BrokerInfo>> brokers{
            wire::CreateBrokerInfoDirect(fbb, id_, "127.0.0.1", port_),
            wire::CreateBrokerInfoDirect(fbb, real_id_, "127.0.0.1", real_port_)};
        std::int32_t lead = leader.load();
        if (leaderless_answers.load() > 0) {
          --leaderless_answers;
          lead = -1;
        }
        std::vector<flatbuffers::Offset<wire::TopicMetadata>> topics;
        const auto* names = req.body_as_MetadataRequest()->topics();
        auto describe = [&](const std::string& name) {
          if (name != topic_) {
            topics.push_back(wire::CreateTopicMetadataDirect(
                fbb, name.c_str(), wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
            return;
          }
          std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts;
          for (std::int32_t p = 0; p < partitions_; ++p) {
            auto replicas = fbb.CreateVector(std::vector<std::int32_t>{real_id_, id_});
            auto isr = fbb.CreateVector(std::vector<std::int32_t>{real_id_});
            parts.push_back(wire::CreatePartitionMetadata(fbb, p, wire::ErrorCode::NONE, lead, 3,
                                                          replicas, isr));
          }
          topics.push_back(
              wire::CreateTopicMetadataDirect(fbb, name.c_str(), wire::ErrorCode::NONE, &parts));
        };
        if (names == nullptr) {
          describe(topic_);
        } else {
          for (const auto* n : *names) describe(n->str());
        }
        type = wire::Response::MetadataResponse;
        body = wire::CreateMetadataResponseDirect(fbb, &brokers, id_, "cluster", &topics).Union();
        break;
      }
      case wire::Request::DescribeConfigsRequest: {
        std::vector<flatbuffers::Offset<wire::TopicConfigs>> results{
            wire::CreateTopicConfigsDirect(fbb, topic_.c_str())};
        type = wire::Response::DescribeConfigsResponse;
        body = wire::CreateDescribeConfigsResponseDirect(fbb, &results).Union();
        break;
      }
      case wire::Request::ProduceRequest: {
        ++produces;
        std::vector<flatbuffers::Offset<wire::ProduceTopicResponse>> topics;
        for (const auto* t : *req.body_as_ProduceRequest()->topics()) {
          std::vector<flatbuffers::Offset<wire::ProducePartitionResponse>> parts;
          for (const auto* p : *t->partitions())
            parts.push_back(wire::CreateProducePartitionResponse(fbb, p->partition(), refuse()));
          topics.push_back(wire::CreateProduceTopicResponseDirect(fbb, t->name()->c_str(), &parts));
        }
        type = wire::Response::ProduceResponse;
        body = wire::CreateProduceResponseDirect(fbb, &topics).Union();
        break;
      }
      case wire::Request::FetchRequest: {
        ++fetches;
        std::vector<flatbuffers::Offset<wire::FetchTopicResponse>> topics;
        for (const auto* t : *req.body_as_FetchRequest()->topics()) {
          std::vector<flatbuffers::Offset<wire::FetchPartitionResponse>> parts;
          for (const auto* p : *t->partitions())
            parts.push_back(wire::CreateFetchPartitionResponse(fbb, p->partition(), refuse()));
          topics.push_back(wire::CreateFetchTopicResponseDirect(fbb, t->name()->c_str(), &parts));
        }
        type = wire::Response::FetchResponse;
        body = wire::CreateFetchResponseDirect(fbb, &topics).Union();
        break;
      }
      case wire::Request::ListOffsetsRequest: {
        ++list_offsets;
        std::vector<flatbuffers::Offset<wire::ListOffsetsTopicResponse>> topics;
        for (const auto* t : *req.body_as_ListOffsetsRequest()->topics()) {
          std::vector<flatbuffers::Offset<wire::ListOffsetsPartitionResponse>> parts;
          for (const auto* p : *t->partitions()) {
            parts.push_back(
                refuse_list_offsets
                    ? wire::CreateListOffsetsPartitionResponse(fbb, p->partition(), refuse())
                    : wire::CreateListOffsetsPartitionResponse(fbb, p->partition(),
                                                               wire::ErrorCode::NONE, 0));
          }
          topics.push_back(
              wire::CreateListOffsetsTopicResponseDirect(fbb, t->name()->c_str(), &parts));
        }
        type = wire::Response::ListOffsetsResponse;
        body = wire::CreateListOffsetsResponseDirect(fbb, &topics).Union();
        break;
      }
      default: {
        auto env = wire::CreateResponseEnvelopeDirect(fbb, req.correlation_id(),
                                                      wire::ErrorCode::UNSUPPORTED_VERSION, "fake");
        fbb.Finish(env);
        return schemas::encode_frame_prefix(
            std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), 0);
      }
    }
    auto env = wire::CreateResponseEnvelope(fbb, req.correlation_id(), wire::ErrorCode::NONE, 0, 0,
                                            type, body);
    fbb.Finish(env);
    return schemas::encode_frame_prefix(
        std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), 0);
  }

  const std::int32_t id_;
  const std::int32_t real_id_;
  const std::uint16_t real_port_;
  const std::string topic_;
  const std::int32_t partitions_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;  // guards connections_
  std::vector<std::thread> connections_;
};

// A real broker with topic `t` (2 partitions) and a fake broker in front.
struct two_brokers {
  static constexpr std::int32_t fake_id = 7;
  temp_dir dir;
  broker_process real{dir / "data"};
  std::int32_t real_id = 0;
  std::unique_ptr<fake_broker> fake;

  two_brokers() {
    auto a = admin_via(real.bootstrap());
    REQUIRE(a->create_topic("t", 2).has_value());
    auto cluster = a->describe_cluster();
    REQUIRE(cluster.has_value());
    REQUIRE(cluster->brokers.size() == 1);
    real_id = cluster->brokers[0].id;
    fake = std::make_unique<fake_broker>(fake_id, real_id, real.port(), "t", 2);
  }

  std::unique_ptr<producer> producer_via_fake() {
    producer_config c;
    c.bootstrap = local(fake->port());
    c.acks = 1;
    c.linger = std::chrono::milliseconds(1);
    c.retry_backoff = std::chrono::milliseconds(10);
    c.delivery_timeout = std::chrono::seconds(20);
    auto p = producer::connect(c);
    REQUIRE(p.has_value());
    return std::move(*p);
  }
  std::unique_ptr<consumer> consumer_via_fake() {
    consumer_config c;
    c.bootstrap = local(fake->port());
    c.fetch_max_wait = std::chrono::milliseconds(100);
    c.retry_backoff = std::chrono::milliseconds(10);
    auto k = consumer::connect(c);
    REQUIRE(k.has_value());
    return std::move(*k);
  }
  std::unique_ptr<admin> admin_via(const std::string& bootstrap) {
    admin_config c;
    c.bootstrap = bootstrap;
    auto a = admin::connect(c);
    REQUIRE(a.has_value());
    return std::move(*a);
  }
};

// Polls until `count` records arrived (bounded: 20 s); their values.
std::vector<std::string> read_values(consumer& c, std::size_t count) {
  std::vector<std::string> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto recs = c.poll(std::chrono::milliseconds(200));
    REQUIRE(recs.has_value());
    for (const auto& r : *recs) out.emplace_back(r.value.value_or(""));
  }
  return out;
}

// A Metadata answer: brokers 1 and 2; topic "a" led by 1, 2, none, and a
// broker not in the list; topic "gone" unknown.
flatbuffers::DetachedBuffer metadata_answer() {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::BrokerInfo>> brokers{
      wire::CreateBrokerInfoDirect(fbb, 1, "h1", 9001),
      wire::CreateBrokerInfoDirect(fbb, 2, "h2", 9002)};
  std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts{
      wire::CreatePartitionMetadata(fbb, 0, wire::ErrorCode::NONE, 1, 4),
      wire::CreatePartitionMetadata(fbb, 1, wire::ErrorCode::NONE, 2, 5),
      wire::CreatePartitionMetadata(fbb, 2, wire::ErrorCode::NONE, -1, 6),
      wire::CreatePartitionMetadata(fbb, 3, wire::ErrorCode::NONE, 9, 7)};
  std::vector<flatbuffers::Offset<wire::TopicMetadata>> topics{
      wire::CreateTopicMetadataDirect(fbb, "a", wire::ErrorCode::NONE, &parts),
      wire::CreateTopicMetadataDirect(fbb, "gone", wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)};
  fbb.Finish(wire::CreateMetadataResponseDirect(fbb, &brokers, 1, "cluster", &topics));
  return fbb.Release();
}

}  // namespace

TEST_CASE(
    "client routing: bootstrap lists parse, blanks around entries ignored, a bad entry named") {
  auto one = client::parse_bootstrap("127.0.0.1:9292");
  REQUIRE(one.has_value());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0] == client::host_port{"127.0.0.1", 9292});
  auto three = client::parse_bootstrap("a:1, b.example:2 ,[::1]:3");
  REQUIRE(three.has_value());
  REQUIRE(three->size() == 3);
  CHECK((*three)[1] == client::host_port{"b.example", 2});
  CHECK((*three)[2].port == 3);
  CHECK(client::join(*three) == "a:1, b.example:2, [::1]:3");
  for (const char* bad : {"", "a:1,", "a:1,,b:2", "a", "a:0", "a:65536", ":1", "a:1,b"}) {
    auto r = client::parse_bootstrap(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  }
  CHECK(client::parse_bootstrap("a:1,b").error().message.find("'b' is not host:port") !=
        std::string::npos);
}

TEST_CASE("client routing: Metadata maps each partition to its leader's address") {
  auto buf = metadata_answer();
  auto view = client::parse_metadata(*flatbuffers::GetRoot<wire::MetadataResponse>(buf.data()));
  REQUIRE(view.has_value());
  CHECK(view->brokers.size() == 2);
  CHECK(view->controller == 1);
  auto p0 = client::find_leader(*view, "a", 0);
  REQUIRE(p0.has_value());
  CHECK(p0->broker == 1);
  CHECK(p0->address == client::host_port{"h1", 9001});
  CHECK(p0->leader_epoch == 4);
  CHECK(client::find_leader(*view, "a", 1)->address == client::host_port{"h2", 9002});
  CHECK(client::find_leader(*view, "a", 2).error().code == errc::not_leader);  // no leader elected
  CHECK(client::find_leader(*view, "a", 3).error().code ==
        errc::not_leader);  // leader not a live broker
  CHECK(client::find_leader(*view, "a", 4).error().code == errc::unknown_topic_or_partition);
  CHECK(client::find_leader(*view, "a", -1).error().code == errc::unknown_topic_or_partition);
  CHECK(client::find_leader(*view, "gone", 0).error().code == errc::unknown_topic_or_partition);
  CHECK(client::find_leader(*view, "never", 0).error().code == errc::unknown_topic_or_partition);

  std::vector<topic_partition_ref> tps{{"a", 0}, {"a", 1}, {"a", 2}, {"a", 3}, {"gone", 0}};
  auto routes = client::route_by_leader(*view, tps);
  REQUIRE(routes.by_leader.size() == 2);
  CHECK(routes.by_leader[1] == std::vector<topic_partition_ref>{{"a", 0}});
  CHECK(routes.by_leader[2] == std::vector<topic_partition_ref>{{"a", 1}});
  REQUIRE(routes.unroutable.size() == 3);
  CHECK(routes.unroutable[0].first == topic_partition_ref{"a", 2});
  CHECK(routes.unroutable[2].second.code == errc::unknown_topic_or_partition);
}

TEST_CASE(
    "client routing: a newer Metadata answer replaces brokers and leaders and drops unknown "
    "topics") {
  auto buf = metadata_answer();
  auto view = client::parse_metadata(*flatbuffers::GetRoot<wire::MetadataResponse>(buf.data()));
  REQUIRE(view.has_value());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::BrokerInfo>> brokers{
      wire::CreateBrokerInfoDirect(fbb, 2, "h2", 9002),
      wire::CreateBrokerInfoDirect(fbb, 3, "h3", 9003)};
  std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts{
      wire::CreatePartitionMetadata(fbb, 0, wire::ErrorCode::NONE, 3, 5)};
  std::vector<flatbuffers::Offset<wire::TopicMetadata>> topics{
      wire::CreateTopicMetadataDirect(fbb, "b", wire::ErrorCode::NONE, &parts),
      wire::CreateTopicMetadataDirect(fbb, "a", wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)};
  fbb.Finish(wire::CreateMetadataResponseDirect(fbb, &brokers, 2, "cluster", &topics));
  auto newer =
      client::parse_metadata(*flatbuffers::GetRoot<wire::MetadataResponse>(fbb.GetBufferPointer()));
  REQUIRE(newer.has_value());
  client::merge(*view, std::move(*newer));
  CHECK(view->controller == 2);
  CHECK_FALSE(view->brokers.contains(1));
  CHECK(client::find_leader(*view, "b", 0)->address == client::host_port{"h3", 9003});
  CHECK(client::find_leader(*view, "a", 0).error().code == errc::unknown_topic_or_partition);
}

TEST_CASE(
    "client routing: a dead first bootstrap address is skipped by admin, producer, consumer and "
    "runnelctl") {
  temp_dir dir;
  broker_process b(dir / "data");
  const std::string list = local(free_port()) + "," + b.bootstrap();
  admin_config ac;
  ac.bootstrap = list;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("boot", 2).has_value());
  producer_config pc;
  pc.bootstrap = list;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  for (int i = 0; i < 10; ++i)
    REQUIRE((*p)->send("boot", "k" + std::to_string(i), "v" + std::to_string(i)).get().has_value());
  consumer_config cc;
  cc.bootstrap = list;
  cc.fetch_max_wait = std::chrono::milliseconds(100);
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{"boot", 0}, {"boot", 1}}).has_value());
  CHECK(read_values(**c, 10).size() == 10);
  CHECK((*a)->list_offset("boot", 0, latest_offset).value() +
            (*a)->list_offset("boot", 1, latest_offset).value() ==
        10);
  auto r = run_command({RUNNELCTL_BIN, "--bootstrap", list, "topic", "list", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "[{\"name\":\"boot\",\"partitions\":2}]\n");
}

TEST_CASE("client routing: when no bootstrap broker answers, the error names every address") {
  const std::string first = local(free_port());
  const std::string second = local(free_port());
  admin_config ac;
  ac.bootstrap = first + "," + second;
  auto a = admin::connect(ac);
  REQUIRE_FALSE(a.has_value());
  CHECK(a.error().code == errc::connection_failed);
  CHECK(a.error().message.find(first) != std::string::npos);
  CHECK(a.error().message.find(second) != std::string::npos);
  producer_config pc;
  pc.bootstrap = ac.bootstrap;
  auto p = producer::connect(pc);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().message.find(second) != std::string::npos);
  consumer_config cc;
  cc.bootstrap = ac.bootstrap;
  auto c = consumer::connect(cc);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().message.find(second) != std::string::npos);
  pc.bootstrap = first + ",nonsense";
  CHECK(producer::connect(pc).error().code == errc::invalid_argument);
  auto r = run_command({RUNNELCTL_BIN, "--bootstrap", ac.bootstrap, "topic", "list"});
  CHECK(r.exit_code == 1);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(first) != std::string::npos);
  CHECK(r.err.find(second) != std::string::npos);
}

TEST_CASE(
    "client routing: produce, fetch and list offsets go to the leader Metadata names, not the "
    "bootstrap broker") {
  two_brokers f;
  auto p = f.producer_via_fake();
  for (int i = 0; i < 20; ++i)
    REQUIRE(p->send("t", "k" + std::to_string(i), "v").get().has_value());
  auto c = f.consumer_via_fake();
  REQUIRE(c->assign({{"t", 0}, {"t", 1}}).has_value());
  CHECK(read_values(*c, 20).size() == 20);
  auto a = f.admin_via(local(f.fake->port()));
  CHECK(a->list_offset("t", 0, latest_offset).value() +
            a->list_offset("t", 1, latest_offset).value() ==
        20);
  CHECK(f.fake->metadata.load() > 0);  // asked where the leaders are
  CHECK(f.fake->produces.load() == 0);
  CHECK(f.fake->fetches.load() == 0);
  CHECK(f.fake->list_offsets.load() == 0);
}

TEST_CASE(
    "client routing: a producer refused with NOT_LEADER looks the leader up again and delivers "
    "there") {
  two_brokers f;
  f.fake->leader = two_brokers::fake_id;  // the fake claims the partitions until it refuses once
  auto p = f.producer_via_fake();
  auto d = p->send("t", "k", "moved").get();
  REQUIRE(d.has_value());
  CHECK(d->offset == 0);
  CHECK(f.fake->produces.load() >= 1);
  f.fake->leader = two_brokers::fake_id;
  f.fake->refusal = wire::ErrorCode::FENCED_LEADER_EPOCH;
  REQUIRE(p->send("t", "k", "fenced").get().has_value());
  auto a = f.admin_via(f.real.bootstrap());
  CHECK(a->list_offset("t", d->partition, latest_offset).value() == 2);
}

TEST_CASE("client routing: records for a partition without a leader wait for one, then go") {
  two_brokers f;
  f.fake->leaderless_answers = 5;
  auto p = f.producer_via_fake();
  auto d = p->send("t", "k", "patient").get();
  REQUIRE(d.has_value());
  CHECK(f.fake->metadata.load() >= 5);
  CHECK(f.fake->produces.load() == 0);
}

TEST_CASE(
    "client routing: a consumer fenced by its leader continues from the same position on the new "
    "one") {
  two_brokers f;
  {
    auto p = f.producer_via_fake();
    for (int i = 0; i < 10; ++i)
      REQUIRE(p->send("t", "k" + std::to_string(i), "v" + std::to_string(i)).get().has_value());
  }
  // The fake claims the partitions (and answers ListOffsets with 0) until
  // its first refused fetch.
  f.fake->leader = two_brokers::fake_id;
  f.fake->refusal = wire::ErrorCode::FENCED_LEADER_EPOCH;
  auto c = f.consumer_via_fake();
  REQUIRE(c->assign({{"t", 0}, {"t", 1}}).has_value());
  auto values = read_values(*c, 10);
  CHECK(values.size() == 10);
  CHECK(f.fake->fetches.load() >= 1);
  std::sort(values.begin(), values.end());
  CHECK(values.front() == "v0");
  // ListOffsets refused with NOT_LEADER: looked up again, answered by the real leader.
  f.fake->leader = two_brokers::fake_id;
  f.fake->refusal = wire::ErrorCode::NOT_LEADER;
  f.fake->refuse_list_offsets = true;
  auto a = f.admin_via(local(f.fake->port()));
  const auto before = f.fake->list_offsets.load();
  CHECK(a->list_offset("t", 0, latest_offset).value() +
            a->list_offset("t", 1, latest_offset).value() ==
        10);
  CHECK(f.fake->list_offsets.load() == before + 1);
}

TEST_CASE(
    "client routing: runnelctl topic describe shows replicas and ISR and asks each leader for "
    "offsets") {
  two_brokers f;
  {
    auto p = f.producer_via_fake();
    REQUIRE(p->send("t", std::nullopt, "x").get().has_value());
  }
  const std::string real = std::to_string(f.real_id);
  auto r = run_command(
      {RUNNELCTL_BIN, "--bootstrap", local(f.fake->port()), "--json", "topic", "describe", "t"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"leader\":" + real + ",\"leader_epoch\":3,\"replicas\":[" + real +
                   ",7],\"isr\":[" + real + "]") != std::string::npos);
  CHECK(r.out.find("\"latest_offset\":1,") != std::string::npos);
  r = run_command({RUNNELCTL_BIN, "--bootstrap", local(f.fake->port()), "topic", "describe", "t"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("REPLICAS") != std::string::npos);
  CHECK(r.out.find("ISR") != std::string::npos);
  CHECK(r.out.find(real + ",7") != std::string::npos);
  CHECK(f.fake->list_offsets.load() == 0);
  // Offline partitions (no leader) are shown without offsets, not an error.
  f.fake->leader = -1;
  r = run_command(
      {RUNNELCTL_BIN, "--bootstrap", local(f.fake->port()), "--json", "topic", "describe", "t"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"leader\":-1,") != std::string::npos);
  CHECK(r.out.find("\"latest_offset\":-1,") != std::string::npos);
}

TEST_CASE(
    "client routing: producer and consumer follow their broker to the next bootstrap address after "
    "it dies") {
  temp_dir dir;
  const auto port_a = free_port();
  auto port_b = free_port();
  while (port_b == port_a) port_b = free_port();
  const std::string list = local(port_a) + "," + local(port_b);
  auto first = std::make_unique<broker_process>(
      dir / "data", std::vector<std::string>{"--listen", local(port_a)});
  admin_config ac;
  ac.bootstrap = list;
  REQUIRE(admin::connect(ac).value()->create_topic("f", 2).has_value());
  producer_config pc;
  pc.bootstrap = list;
  pc.acks = -1;
  pc.linger = std::chrono::milliseconds(1);
  pc.retry_backoff = std::chrono::milliseconds(20);
  pc.request_timeout = std::chrono::seconds(2);
  pc.delivery_timeout = std::chrono::seconds(30);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  consumer_config cc;
  cc.bootstrap = list;
  cc.fetch_max_wait = std::chrono::milliseconds(100);
  cc.retry_backoff = std::chrono::milliseconds(20);
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{"f", 0}, {"f", 1}}).has_value());
  for (int i = 0; i < 20; ++i)
    REQUIRE((*p)->send("f", "k" + std::to_string(i), "v" + std::to_string(i)).get().has_value());
  auto values = read_values(**c, 20);
  REQUIRE(values.size() == 20);

  first->kill9();  // acks=all: every acknowledged record is on disk
  first.reset();
  broker_process second(dir / "data", {"--listen", local(port_b)});
  std::vector<std::future<result<delivery>>> sent;
  for (int i = 20; i < 40; ++i)
    sent.push_back((*p)->send("f", "k" + std::to_string(i), "v" + std::to_string(i)));
  for (auto& s : sent) CHECK(s.get().has_value());
  // Same positions on the new address: every record once, nothing skipped.
  auto more = read_values(**c, 20);
  values.insert(values.end(), more.begin(), more.end());
  std::sort(values.begin(), values.end());
  CHECK(values.size() == 40);
  CHECK(std::adjacent_find(values.begin(), values.end()) == values.end());
}
