#pragma once
// topic_store: the standalone broker's topic metadata, kept in
// <data.dir>/topics and reloaded on start.
//
// File (text, one record per line, written to a temp file, fsynced and
// renamed over the old one, then the directory fsynced):
//   runnel-topics 1
//   topic <name> <partitions>
//   config <name> <key> <value>
//   crc32c <8 hex digits: CRC-32C of every byte before this line>
// A file whose checksum or syntax is wrong is refused at start with its
// path and line: metadata is never guessed.
//
// Owned by shard 0; other shards get immutable snapshots. The broker makes
// its changes in two steps, prepare_*() then commit() once the change's text
// is durable in file() (written through shard 0's io_uring ring, so no fsync
// runs on a shard thread: broker/net/topic_writes.h); create(), remove() and
// alter() do both with a blocking write (the store's own tests).

#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "broker/meta/errc.h"
#include "broker/meta/types.h"

namespace runnel::meta {

inline constexpr std::int32_t max_partitions = 10000;

// A new topic's name, partition count and config overrides (not whether it
// exists); its resolved config.
std::expected<topic_config, error> validate_new_topic(const std::string& name, std::int32_t partitions,
                                                      const config_overrides& overrides, const topic_config& defaults);

// Applies `changes` to `overrides` (an empty value removes the override)
// and validates the result; `overrides` is left unchanged on error.
std::expected<topic_config, error> apply_config_changes(config_overrides& overrides, const config_overrides& changes,
                                                        const topic_config& defaults);

// A validated change not yet written: the topics after it and the file's
// text holding them.
struct topic_change {
  topics_snapshot next;
  std::string text;
};

class topic_store {
 public:
  static std::expected<topic_store, error> load(const std::filesystem::path& data_dir, topic_config defaults);

  [[nodiscard]] topics_snapshot snapshot() const { return topics_; }
  [[nodiscard]] const topic_config& defaults() const { return defaults_; }

  std::expected<void, error> create(const std::string& name, std::int32_t partitions, std::int32_t replication,
                                    const config_overrides& overrides, bool validate_only);
  std::expected<void, error> remove(const std::string& name);
  // Sets each key (an empty value removes the override).
  std::expected<void, error> alter(const std::string& name, const config_overrides& changes, bool validate_only);

  // The same checks, without writing: nullopt for validate_only (valid,
  // nothing to change).
  std::expected<std::optional<topic_change>, error> prepare_create(const std::string& name, std::int32_t partitions,
                                                                   std::int32_t replication,
                                                                   const config_overrides& overrides,
                                                                   bool validate_only) const;
  std::expected<topic_change, error> prepare_remove(const std::string& name) const;
  std::expected<std::optional<topic_change>, error> prepare_alter(const std::string& name,
                                                                  const config_overrides& changes,
                                                                  bool validate_only) const;
  // `c` (prepared from the current state) is durable in file(): it is the state now.
  void commit(topic_change c) { topics_ = std::move(c.next); }
  [[nodiscard]] const std::filesystem::path& file() const { return file_; }
  // The error for a failed write of file().
  [[nodiscard]] error write_failed(std::error_code ec) const;

  [[nodiscard]] static bool valid_topic_name(std::string_view name);

 private:
  topic_store(std::filesystem::path file, topic_config defaults);
  [[nodiscard]] topic_change change_to(std::shared_ptr<topic_map> next) const;
  // Writes `c` (blocking) and commits it.
  std::expected<void, error> write_and_commit(std::optional<topic_change> c);

  std::filesystem::path file_;
  topic_config defaults_;
  topics_snapshot topics_;
};

}  // namespace runnel::meta
