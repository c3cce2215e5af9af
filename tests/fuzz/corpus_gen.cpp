// fuzz_corpus_gen <dir>: writes the seed corpora of the libFuzzer targets
// into <dir>/<target>/ (tests/fuzz/corpus/ holds its output): a few small
// valid inputs each, built with the same factories the tests use. Rerun it
// when a format changes.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <spdlog/logger.h>

#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "broker/storage/logger.h"
#include "schemas/batch.h"
#include "tests/support/batches.h"
#include "tests/support/raw_client.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace {

using namespace runnel;
namespace fs = std::filesystem;

void put(const fs::path& p, std::span<const std::byte> bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void put(const fs::path& p, std::string_view text) { put(p, std::as_bytes(std::span(text.data(), text.size()))); }

// (testing::read_file memcpys from a null pointer on an empty file.)
std::vector<std::byte> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto b = std::as_bytes(std::span(chars));
  return {b.begin(), b.end()};
}

std::vector<std::byte> bytes_of(std::string_view s) {
  auto b = std::as_bytes(std::span(s.data(), s.size()));
  return {b.begin(), b.end()};
}

std::vector<std::byte> response_frame(flatbuffers::FlatBufferBuilder& fbb, wire::Response type,
                                      flatbuffers::Offset<void> body, std::span<const std::byte> payload = {},
                                      wire::ErrorCode error = wire::ErrorCode::NONE) {
  auto env = wire::CreateResponseEnvelope(fbb, 1, error, error != wire::ErrorCode::NONE ? fbb.CreateString("no") : 0, 0,
                                          type, body);
  fbb.Finish(env);
  auto out = schemas::encode_frame_prefix(std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<std::byte> batch_with_headers() {
  schemas::batch_builder b;
  const std::string_view k = "key", v = "value", hv = "h-value";
  const schemas::header_in headers[] = {{"h1", std::as_bytes(std::span(hv.data(), hv.size()))}};
  b.add(std::as_bytes(std::span(k.data(), k.size())), std::as_bytes(std::span(v.data(), v.size())), timestamp_ms(5),
        headers);
  b.add(std::nullopt, std::nullopt, timestamp_ms(6));  // null key, tombstone
  b.set_producer(producer_id(3), 1, 0);
  return b.finish();
}

void request_decoder(const fs::path& out) {
  {
    flatbuffers::FlatBufferBuilder fbb;
    put(out / "metadata", testing::request_frame(fbb, wire::Request::MetadataRequest, wire::CreateMetadataRequest(fbb).Union()));
  }
  put(out / "produce-1", testing::produce_frame("topic", 0, testing::make_batch(1, 40)));
  put(out / "produce-5", testing::produce_frame("topic", 0, testing::make_batch(5, 40)));
  put(out / "produce-headers", testing::produce_frame("t", 2, batch_with_headers()));
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::FetchPartition>> parts{wire::CreateFetchPartition(fbb, 0, 10, 4096)};
    std::vector<flatbuffers::Offset<wire::FetchTopic>> topics{wire::CreateFetchTopicDirect(fbb, "t", &parts)};
    put(out / "fetch", testing::request_frame(fbb, wire::Request::FetchRequest,
                                              wire::CreateFetchRequestDirect(fbb, 100, 1, 1 << 20, &topics).Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::ConfigEntry>> cfg{wire::CreateConfigEntryDirect(fbb, "retention.ms", "1")};
    std::vector<flatbuffers::Offset<wire::CreatableTopic>> t{wire::CreateCreatableTopicDirect(fbb, "n", 3, 1, &cfg)};
    put(out / "create-topics", testing::request_frame(fbb, wire::Request::CreateTopicsRequest,
                                                      wire::CreateCreateTopicsRequestDirect(fbb, &t).Union()));
  }
}

void batch(const fs::path& out) {
  // Byte 0 picks the verify limits (batch_fuzz.cpp).
  auto with_flags = [](std::uint8_t flags, std::vector<std::byte> b) {
    b.insert(b.begin(), std::byte{flags});
    return b;
  };
  put(out / "one-record", with_flags(1, testing::make_batch(1, 16)));
  put(out / "five-records-dense", with_flags(3, testing::make_batch(5, 40)));
  put(out / "headers-tombstone", with_flags(1, batch_with_headers()));
}

void response_decoder(const fs::path& out) {
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::BrokerInfo>> brokers{wire::CreateBrokerInfoDirect(fbb, 1, "127.0.0.1", 9092),
                                                               wire::CreateBrokerInfoDirect(fbb, 2, "h2", 9093, "r1")};
    std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts{
        wire::CreatePartitionMetadata(fbb, 0, wire::ErrorCode::NONE, 1, 4),
        wire::CreatePartitionMetadata(fbb, 1, wire::ErrorCode::NONE, 2, 1)};
    std::vector<flatbuffers::Offset<wire::TopicMetadata>> topics{
        wire::CreateTopicMetadataDirect(fbb, "t", wire::ErrorCode::NONE, &parts),
        wire::CreateTopicMetadataDirect(fbb, "gone", wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)};
    put(out / "metadata", response_frame(fbb, wire::Response::MetadataResponse,
                                         wire::CreateMetadataResponseDirect(fbb, &brokers, 1, "cluster", &topics).Union()));
  }
  {
    auto payload = testing::make_batch(2, 16);
    auto second = batch_with_headers();
    payload.insert(payload.end(), second.begin(), second.end());
    flatbuffers::FlatBufferBuilder fbb;
    wire::PayloadRef ref(0, static_cast<std::uint32_t>(payload.size()));
    std::vector<flatbuffers::Offset<wire::FetchPartitionResponse>> parts{
        wire::CreateFetchPartitionResponse(fbb, 0, wire::ErrorCode::NONE, 10, 0, &ref)};
    std::vector<flatbuffers::Offset<wire::FetchTopicResponse>> topics{wire::CreateFetchTopicResponseDirect(fbb, "t", &parts)};
    put(out / "fetch", response_frame(fbb, wire::Response::FetchResponse,
                                      wire::CreateFetchResponseDirect(fbb, &topics).Union(), payload));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    put(out / "error", response_frame(fbb, wire::Response::NONE, 0, {}, wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
  }
}

void zk_state(const fs::path& out) {
  put(out / "registration", "127.0.0.1:9092");
  put(out / "registration-rack", "broker-2.example:9093 rack-a");
  put(out / "topic", "runnel-topic 1\npartitions 2\nreplicas 0 1,2,3\nreplicas 1 2,3,1\nconfig retention.ms 60000\n"
                     "config cleanup.policy compact,delete");
  put(out / "state", "leader 1 epoch 3 isr 1,2,3");
  put(out / "state-offline", "leader -1 epoch 7 isr ");
}

// The files of a partition directory in log_recovery_fuzz.cpp's layout.
std::vector<std::byte> pack(const fs::path& dir) {
  const char* names[] = {"00000000000000000000.log",  "00000000000000000000.index",     "00000000000000000000.timeindex",
                         "recovery-point",            "leader-epoch-checkpoint",        "cleaner-offset-checkpoint",
                         "00000000000000000000.producers"};
  std::vector<std::byte> out;
  auto add = [&](std::span<const std::byte> b) { out.insert(out.end(), b.begin(), b.end()); };
  const auto marker = bytes_of("RNL#PART");
  for (std::size_t i = 0; i < std::size(names); ++i) {
    if (i > 0) add(marker);
    if (fs::exists(dir / names[i])) add(file_bytes(dir / names[i]));
  }
  for (const auto& e : fs::directory_iterator(dir)) {  // a second segment, if the log rolled
    const auto name = e.path().filename().string();
    if (e.path().extension() == ".log" && name != names[0]) {
      add(marker);
      add(bytes_of(name.substr(0, 20)));
      add(file_bytes(e.path()));
      break;
    }
  }
  return out;
}

void log_recovery(const fs::path& out) {
  storage::logger().set_level(spdlog::level::off);
  asio::io_context io;
  storage::io_ring ring{io};
  auto make = [&](const char* name, int batches, bool producer, bool flush, std::uint64_t segment_bytes) {
    testing::temp_dir tmp;
    storage::log_config cfg;
    cfg.preallocate_bytes = 0;
    cfg.segment_bytes = segment_bytes;
    cfg.index_interval_bytes = 64;
    auto l = testing::run(io, storage::log::open(ring, tmp / "t-0", topic_partition{"t", partition_id(0)}, cfg));
    if (!l) {
      std::fprintf(stderr, "fuzz_corpus_gen: %s: open: %s\n", name, l.error().message().c_str());
      return;
    }
    for (int i = 0; i < batches; ++i) {
      auto b = producer ? batch_with_headers() : testing::make_batch(1 + i % 3, 24, timestamp_ms(1000 + i));
      if (producer) schemas::stamp_producer(b, producer_id(3 + i), 1, 0);  // a new producer each
      auto r = testing::run(io, (*l)->append(b, 1 + i / 2));
      if (!r) std::fprintf(stderr, "fuzz_corpus_gen: %s: append %d: %s\n", name, i, r.error().message().c_str());
    }
    if (flush) {
      (void)testing::run(io, (*l)->flush());
      (void)testing::run(io, (*l)->close());
    }
    l->reset();  // without close: as a crash leaves it
    auto packed = pack(tmp / "t-0");
    put(out / name, packed);
    // log_recovery_fuzz opens an odd-length input with verify.on.open.
    packed.push_back(std::byte{0});
    put(out / (std::string(name) + "-other-mode"), packed);
  };
  make("three-batches-closed", 3, false, true, 1U << 30);
  make("rolled-closed", 6, false, true, 600);
  make("producer-closed", 3, true, true, 1U << 30);
  make("crashed-unflushed", 4, false, false, 1U << 30);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_corpus_gen <dir>\n");
    return 2;
  }
  const fs::path root = argv[1];
  request_decoder(root / "request_decoder");
  batch(root / "batch");
  response_decoder(root / "response_decoder");
  zk_state(root / "zk_state");
  log_recovery(root / "log_recovery");
  std::printf("seed corpora written under %s\n", root.c_str());
  return 0;
}
