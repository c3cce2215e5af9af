#pragma once
// Reading a whole topic back through the SDK, for tests that judge by the
// records a client sees (the DLQ tests).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runnel/admin.h"

namespace runnel::testing {

struct stored_record {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::string value;
  std::map<std::string, std::string> headers;
};

std::unique_ptr<admin> connect_admin(const std::string& bootstrap);

// Every record of every partition of `topic`, read to its latest offset.
std::vector<stored_record> read_topic(const std::string& bootstrap, const std::string& topic);

}  // namespace runnel::testing
