// Bad input against a real broker: every case gets a clear error (or, for a
// malformed frame, a closed connection) while other clients keep working.

#include <doctest/doctest.h>

#include <cstring>
#include <thread>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "tests/support/batches.h"
#include "tests/support/broker_process.h"
#include "tests/support/raw_client.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;

namespace {

struct fixture {
  temp_dir dir;
  broker_process broker{dir / "data", {"--set", "max.request.bytes=65536"}};
  fixture() {
    admin_config c;
    c.bootstrap = broker.bootstrap();
    auto a = admin::connect(c);
    REQUIRE(a.has_value());
    REQUIRE((*a)->create_topic("t", 2, 1, {{"max.message.bytes", "4096"}}).has_value());
  }
  // A healthy client still gets served.
  void check_still_serving() {
    raw_client ok(broker.port());
    auto batch = make_batch();
    ok.send(produce_frame("t", 0, batch));
    auto r = ok.read();
    REQUIRE(r.has_value());
    const auto* resp = r->envelope().body_as_ProduceResponse();
    REQUIRE(resp != nullptr);
    CHECK(resp->topics()->Get(0)->partitions()->Get(0)->error() == wire::ErrorCode::NONE);
  }
  wire::ErrorCode produce_error(std::span<const std::byte> records, const std::string& topic = "t", std::int32_t p = 0) {
    raw_client c(broker.port());
    c.send(produce_frame(topic, p, records));
    auto r = c.read();
    REQUIRE(r.has_value());
    const auto* resp = r->envelope().body_as_ProduceResponse();
    REQUIRE(resp != nullptr);
    return resp->topics()->Get(0)->partitions()->Get(0)->error();
  }
};

std::vector<std::byte> head_bytes(std::uint32_t length, std::uint32_t envelope_length) {
  std::vector<std::byte> h(8);
  std::memcpy(h.data(), &length, 4);
  std::memcpy(h.data() + 4, &envelope_length, 4);
  return h;
}

}  // namespace

TEST_CASE("bad input: a frame over max.request.bytes closes that connection only") {
  fixture f;
  raw_client c(f.broker.port());
  c.send(head_bytes(100U << 20, 64));  // 100 MiB announced; nothing allocated
  CHECK(c.closed_by_peer());
  f.check_still_serving();
}

TEST_CASE("bad input: garbage bytes close that connection only") {
  fixture f;
  raw_client c(f.broker.port());
  std::vector<std::byte> garbage = head_bytes(68, 60);
  garbage.resize(72, std::byte{0x5A});
  c.send(garbage);
  CHECK(c.closed_by_peer());
  f.check_still_serving();
}

TEST_CASE("bad input: a batch with a bad CRC is CORRUPT_MESSAGE and is not appended") {
  fixture f;
  auto batch = make_batch();
  batch[batch.size() - 9] ^= std::byte{0x01};  // inside the CRC-covered records
  CHECK(f.produce_error(batch) == wire::ErrorCode::CORRUPT_MESSAGE);
  f.check_still_serving();
  // The good batch landed at offset 0: the corrupt one took no offset.
  raw_client c(f.broker.port());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::ListOffsetsPartition>> parts{wire::CreateListOffsetsPartition(fbb, 0, -1)};
  std::vector<flatbuffers::Offset<wire::ListOffsetsTopic>> topics{wire::CreateListOffsetsTopicDirect(fbb, "t", &parts)};
  auto body = wire::CreateListOffsetsRequestDirect(fbb, &topics);
  c.send(request_frame(fbb, wire::Request::ListOffsetsRequest, body.Union()));
  auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->envelope().body_as_ListOffsetsResponse()->topics()->Get(0)->partitions()->Get(0)->offset() == 1);
}

TEST_CASE("bad input: truncated record bytes are CORRUPT_MESSAGE") {
  fixture f;
  auto batch = make_batch();
  CHECK(f.produce_error(std::span(batch).first(40)) == wire::ErrorCode::CORRUPT_MESSAGE);
}

TEST_CASE("bad input: an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION") {
  fixture f;
  auto batch = make_batch();
  CHECK(f.produce_error(batch, "nope", 0) == wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
  CHECK(f.produce_error(batch, "t", 7) == wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
}

TEST_CASE("bad input: a batch over the topic's max.message.bytes is MESSAGE_TOO_LARGE") {
  fixture f;
  auto big = make_batch(1, 8000);
  CHECK(f.produce_error(big) == wire::ErrorCode::MESSAGE_TOO_LARGE);
  producer_config c;
  c.bootstrap = f.broker.bootstrap();
  auto p = producer::connect(c);
  REQUIRE(p.has_value());
  auto r = (*p)->send("t", std::nullopt, std::string(8000, 'y')).get();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::message_too_large);
  CHECK(r.error().message.find("max.message.bytes") != std::string::npos);
}

TEST_CASE("bad input: an unsupported api version and a body-less request get envelope errors") {
  fixture f;
  raw_client c(f.broker.port());
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateMetadataRequest(fbb);
  c.send(request_frame(fbb, wire::Request::MetadataRequest, body.Union(), {}, 7));
  auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->envelope().error() == wire::ErrorCode::UNSUPPORTED_VERSION);

  flatbuffers::FlatBufferBuilder empty;
  c.send(request_frame(empty, wire::Request::NONE, {}, {}, 1, 2));
  r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->envelope().error() == wire::ErrorCode::UNSUPPORTED_VERSION);
  CHECK(r->envelope().correlation_id() == 2);
}

TEST_CASE("bad input: records outside the frame payload are INVALID_REQUEST") {
  fixture f;
  raw_client c(f.broker.port());
  flatbuffers::FlatBufferBuilder fbb;
  wire::PayloadRef ref(0, 4096);  // the frame carries no payload at all
  std::vector<flatbuffers::Offset<wire::ProducePartition>> parts{wire::CreateProducePartition(fbb, 0, &ref)};
  std::vector<flatbuffers::Offset<wire::ProduceTopic>> topics{wire::CreateProduceTopicDirect(fbb, "t", &parts)};
  auto body = wire::CreateProduceRequestDirect(fbb, 1, 1000, &topics);
  c.send(request_frame(fbb, wire::Request::ProduceRequest, body.Union()));
  auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->envelope().body_as_ProduceResponse()->topics()->Get(0)->partitions()->Get(0)->error() ==
        wire::ErrorCode::INVALID_REQUEST);
}

TEST_CASE("bad input: pipelined produces past the connection bound are THROTTLED, answered in order") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "max.inflight.produce.bytes.per.connection=1024"});
  {
    admin_config ac;
    ac.bootstrap = b.bootstrap();
    REQUIRE((*admin::connect(ac))->create_topic("t", 1).has_value());
  }
  raw_client c(b.port());
  auto batch = make_batch(1, 600);
  std::vector<std::byte> both = produce_frame("t", 0, batch, -1, 1);
  auto second = produce_frame("t", 0, batch, -1, 2);
  both.insert(both.end(), second.begin(), second.end());
  c.send(both);  // one write: the second arrives while the first waits for fsync
  auto r1 = c.read();
  auto r2 = c.read();
  REQUIRE(r1.has_value());
  REQUIRE(r2.has_value());
  CHECK(r1->envelope().correlation_id() == 1);
  CHECK(r2->envelope().correlation_id() == 2);
  CHECK(r1->envelope().error() == wire::ErrorCode::NONE);
  CHECK(r2->envelope().error() == wire::ErrorCode::THROTTLED);
  CHECK(r2->envelope().throttle_ms() > 0);
}

TEST_CASE("connections: an idle connection is closed after connections.max.idle.ms") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "connections.max.idle.ms=300"});
  raw_client idle(b.port());
  const auto start = std::chrono::steady_clock::now();
  CHECK(idle.closed_by_peer(5000));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(250));
  // A busy connection is not closed.
  raw_client busy(b.port());
  for (int i = 0; i < 6; ++i) {
    flatbuffers::FlatBufferBuilder fbb;
    auto body = wire::CreateMetadataRequest(fbb);
    busy.send(request_frame(fbb, wire::Request::MetadataRequest, body.Union(), {}, 1, static_cast<std::uint32_t>(i)));
    REQUIRE(busy.read().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_CASE("connections: SIGTERM answers a request already in flight before exiting 0") {
  temp_dir dir;
  broker_process b(dir / "data");
  {
    admin_config ac;
    ac.bootstrap = b.bootstrap();
    REQUIRE((*admin::connect(ac))->create_topic("t", 1).has_value());
  }
  raw_client c(b.port());
  // A fetch that long-polls for 3 s: in flight when SIGTERM arrives.
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::FetchPartition>> parts{wire::CreateFetchPartition(fbb, 0, 0, 4096)};
  std::vector<flatbuffers::Offset<wire::FetchTopic>> topics{wire::CreateFetchTopicDirect(fbb, "t", &parts)};
  auto body = wire::CreateFetchRequestDirect(fbb, 3000, 1, 1 << 20, &topics);
  c.send(request_frame(fbb, wire::Request::FetchRequest, body.Union()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::thread stopper([&] { CHECK(b.stop() == 0); });
  auto r = c.read(10'000);
  stopper.join();
  REQUIRE(r.has_value());
  CHECK(r->envelope().error() == wire::ErrorCode::NONE);
  CHECK(r->envelope().body_as_FetchResponse() != nullptr);
}

TEST_CASE("bad input: overlapping record sets are INVALID_REQUEST and nothing is appended") {
  fixture f;
  raw_client c(f.broker.port());
  auto batch = make_batch();
  flatbuffers::FlatBufferBuilder fbb;
  wire::PayloadRef ref(0, static_cast<std::uint32_t>(batch.size()));
  std::vector<flatbuffers::Offset<wire::ProducePartition>> parts{wire::CreateProducePartition(fbb, 0, &ref),
                                                                 wire::CreateProducePartition(fbb, 1, &ref)};
  std::vector<flatbuffers::Offset<wire::ProduceTopic>> topics{wire::CreateProduceTopicDirect(fbb, "t", &parts)};
  auto body = wire::CreateProduceRequestDirect(fbb, 1, 1000, &topics);
  c.send(request_frame(fbb, wire::Request::ProduceRequest, body.Union(), batch));
  auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->envelope().error() == wire::ErrorCode::INVALID_REQUEST);
  f.check_still_serving();  // partition 0 takes offset 0: the refused request appended nothing
}

TEST_CASE("bad input: a throttled acks=0 produce gets no response, the next request its own") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "max.inflight.produce.bytes.per.connection=1024"});
  {
    admin_config ac;
    ac.bootstrap = b.bootstrap();
    REQUIRE((*admin::connect(ac))->create_topic("t", 1).has_value());
  }
  raw_client c(b.port());
  auto batch = make_batch(1, 600);
  std::vector<std::byte> frames = produce_frame("t", 0, batch, -1, 1);  // acks=all, admitted
  auto silent = produce_frame("t", 0, batch, 0, 2);                    // acks=0, throttled
  frames.insert(frames.end(), silent.begin(), silent.end());
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateMetadataRequest(fbb);
  auto meta = request_frame(fbb, wire::Request::MetadataRequest, body.Union(), {}, 1, 3);
  frames.insert(frames.end(), meta.begin(), meta.end());
  c.send(frames);
  auto r1 = c.read();
  auto r3 = c.read();
  REQUIRE(r1.has_value());
  REQUIRE(r3.has_value());
  CHECK(r1->envelope().correlation_id() == 1);
  CHECK(r3->envelope().correlation_id() == 3);
}
