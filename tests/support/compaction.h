#pragma once
// Helpers for log compaction tests: keyed batches, the records a log
// serves (read through log::read, gaps allowed), and a checker of
// "the latest record of every key is there, unchanged".

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schemas/batch.h"
#include "tests/support/log_fixture.h"

namespace runnel::testing {

struct keyed_record {
  std::optional<std::string> key;    // nullopt: null key
  std::optional<std::string> value;  // nullopt: tombstone
};

// One batch of these records; record i has timestamp ts + i.
std::vector<std::byte> keyed_batch(const std::vector<keyed_record>& records, timestamp_ms ts);

struct served_record {
  offset off{0};
  timestamp_ms ts{0};
  std::optional<std::string> key;
  std::optional<std::string> value;
};

// Every record log::read serves from the log start to the log end. Each
// batch must verify (CRC, structure); offsets must strictly increase and
// each range must move the reader forward (FAILs otherwise).
std::vector<served_record> served_records(log_fixture& f);

// What a test wrote: key -> its latest record (offset, value or tombstone).
class key_model {
 public:
  // Appends `records` through the fixture and remembers the latest per key.
  offset append(log_fixture& f, const std::vector<keyed_record>& records, timestamp_ms ts);
  [[nodiscard]] const std::map<std::string, served_record>& latest() const { return latest_; }

 private:
  std::map<std::string, served_record> latest_;
};

// Empty when `got` holds, for every key of the model whose latest record
// is a value, that record (same offset and value) as the key's last one,
// and for a key whose latest is a tombstone, nothing newer than it; else
// what is wrong. With `compacted_below`, also no record may remain that is
// older than its key's latest when that latest lies below it (the range the
// cleaner's offset map covered).
std::string check_latest(const key_model& model, const std::vector<served_record>& got,
                         std::optional<offset> compacted_below = std::nullopt);

}  // namespace runnel::testing
