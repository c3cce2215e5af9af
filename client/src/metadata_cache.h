#pragma once
// Partition counts of topics, fetched with Metadata on first use and again
// after a failure. Thread-safe.

#include <map>
#include <mutex>
#include <string>

#include "client/src/wire_client.h"

namespace runnel::client {

class metadata_cache {
 public:
  explicit metadata_cache(wire_client& w) : wire_(w) {}
  result<std::int32_t> partitions(const std::string& topic);
  void forget(const std::string& topic);

 private:
  wire_client& wire_;
  std::mutex mu_;
  std::map<std::string, std::int32_t, std::less<>> counts_;
};

}  // namespace runnel::client
