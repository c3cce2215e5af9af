// Fuzz target for log recovery: the input becomes the files of one
// partition directory, then storage::log::open recovers it the way the
// broker does at start (tests/support/log_fixture.h opens it the same way,
// on a real io_uring). Open must succeed or fail with an error code, never
// crash; when it succeeds the log must serve only whole, CRC-valid batches
// with dense offsets and take a new append.
//
// Input: parts separated by the 8 bytes "RNL#PART", in this order:
//   0 00000000000000000000.log        4 leader-epoch-checkpoint
//   1 00000000000000000000.index      5 cleaner-offset-checkpoint
//   2 00000000000000000000.timeindex  6 00000000000000000000.producers
//   3 recovery-point                  7 a second segment: 20 ASCII digits
//                                       (its base offset), then its .log
// Missing parts are missing files. An input of odd length opens with
// log.verify.on.open (CRC-scan every segment, so even bytes below the
// recovery point are checked and the read-back property holds); an even
// one with the default (only the tail is scanned; crashes only).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
#include "broker/storage/segment.h"
#include "schemas/batch.h"
#include "tests/support/batches.h"
#include "tests/support/run.h"

namespace {

using namespace runnel;

constexpr std::string_view part_marker = "RNL#PART";
constexpr const char* part_files[] = {
    "00000000000000000000.log",       "00000000000000000000.index",     "00000000000000000000.timeindex",
    "recovery-point",                 "leader-epoch-checkpoint",        "cleaner-offset-checkpoint",
    "00000000000000000000.producers",
};

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "log_recovery_fuzz: property broken: %s\n", what);
  std::abort();
}

void put(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// One process-wide ring and scratch directory (tmpfs when there is one:
// recovery fdatasyncs, and each input is a fresh directory).
struct harness {
  asio::io_context io;
  storage::io_ring ring{io};
  std::filesystem::path root;

  harness() {
    storage::logger().set_level(spdlog::level::off);
    std::string templ = (std::filesystem::is_directory("/dev/shm") ? std::string("/dev/shm") : std::string("/tmp")) +
                        "/runnel-fuzz-XXXXXX";
    require(::mkdtemp(templ.data()) != nullptr, "mkdtemp");
    root = templ;
  }
  ~harness() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  harness(const harness&) = delete;             // one scratch directory
  harness& operator=(const harness&) = delete;  // one scratch directory
  harness(harness&&) = delete;                  // the ring holds the io_context
  harness& operator=(harness&&) = delete;       // the ring holds the io_context
};

harness& the_harness() {
  static harness h;
  return h;
}

void write_parts(const std::filesystem::path& dir, std::string_view in) {
  std::size_t i = 0;
  while (true) {
    const auto at = in.find(part_marker);
    const std::string_view part = in.substr(0, at);
    if (i < std::size(part_files)) {
      put(dir / part_files[i], part);
    } else if (i == std::size(part_files) && part.size() >= 20 &&
               part.substr(0, 20).find_first_not_of("0123456789") == std::string_view::npos) {
      put(dir / (std::string(part.substr(0, 20)) + ".log"), part.substr(20));
    }
    if (at == std::string_view::npos) return;
    in.remove_prefix(at + part_marker.size());
    ++i;
  }
}

// Every batch log::read returns, from the log start to its end.
void read_back(harness& h, storage::log& l) {
  offset from = l.log_start_offset();
  offset expect = from;
  bool first = true;
  while (from < l.log_end_offset()) {
    auto r = testing::run(h.io, l.read(from, 1U << 20));
    if (!r || !r->has_value()) return;  // an error code is an answer
    const auto& range = **r;
    std::vector<std::byte> bytes(range.length);
    require(::pread(range.file->fd(), bytes.data(), bytes.size(), static_cast<off_t>(range.pos.value())) ==
                static_cast<ssize_t>(bytes.size()),
            "a read range runs past its file");
    std::span<const std::byte> rest(bytes);
    while (!rest.empty()) {
      auto hd = schemas::decode_header(rest);
      require(hd.has_value() && hd->length <= rest.size(), "a read range holds a partial batch");
      require(!schemas::check_crc(rest.first(hd->length), *hd), "a read range holds a batch with a bad CRC");
      require(first || hd->base_offset >= expect, "offsets go backwards");
      first = false;
      expect = hd->next_offset();
      rest = rest.subspan(hd->length);
    }
    require(range.next_offset > from, "read makes no progress");
    from = range.next_offset;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  harness& h = the_harness();
  const std::filesystem::path dir = h.root / "t-0";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  write_parts(dir, std::string_view(reinterpret_cast<const char*>(data), size));

  storage::log_config cfg;
  cfg.preallocate_bytes = 0;  // no 16 MiB fallocate per input
  cfg.verify_on_open = size % 2 == 1;
  auto opened = testing::run(h.io, storage::log::open(h.ring, dir, topic_partition{"t", partition_id(0)}, cfg));
  if (!opened) return 0;  // refused with an error: fine
  auto& l = **opened;
  if (cfg.verify_on_open) read_back(h, l);
  auto batch = testing::make_batch(2, 8);
  auto appended = testing::run(h.io, l.append(batch));
  if (appended) require(appended->base_offset.value() >= 0, "append got a negative offset");
  (void)testing::run(h.io, l.close());
  return 0;
}
