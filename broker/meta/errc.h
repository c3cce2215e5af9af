#pragma once
// Topic metadata errors; each maps to one wire error code at the network edge.

#include <string>
#include <system_error>

namespace runnel::meta {

enum class errc {
  topic_exists = 1,    // TOPIC_ALREADY_EXISTS
  invalid_topic,       // INVALID_TOPIC: name not [a-zA-Z0-9._-]{1,249}
  invalid_partitions,  // INVALID_PARTITIONS
  invalid_replication, // INVALID_REPLICATION_FACTOR
  invalid_config,      // INVALID_CONFIG
  unknown_topic,       // UNKNOWN_TOPIC_OR_PARTITION
  storage_failed,      // STORAGE_ERROR: the metadata file could not be read or written
  malformed_store,     // the metadata file does not parse (or fails its checksum)
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

// An error with the text the user sees (names the topic, key or file).
struct error {
  std::error_code code;
  std::string message;
};

}  // namespace runnel::meta

template <>
struct std::is_error_code_enum<runnel::meta::errc> : std::true_type {};
