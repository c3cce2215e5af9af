#pragma once
// Topic config keys: parsing, validation and resolution against defaults.
//
//   segment.bytes  segment.ms  retention.bytes  retention.ms
//   index.interval.bytes  segment.preallocate.bytes  max.message.bytes
//   min.insync.replicas  unclean.leader.election (cluster mode)
//   cleanup.policy (delete | compact | compact,delete)  delete.retention.ms
//   min.cleanable.dirty.ratio (0..1)  min.compaction.lag.ms
//   flush.messages  flush.ms (0: never, the default)
//   dedup.window.ms  dedup.window.max.ids  dead.letter.topic (a marker:
//   runnelctl dlq list lists such topics; the broker treats them as any)
//
// Values are integers (bytes or milliseconds), except
// unclean.leader.election and dead.letter.topic (true/false); retention.* accept -1 (no limit). Errors name the key and say what is wrong, for the CLI and the log.

#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/meta/types.h"

namespace runnel::meta {

// All keys a topic may override, in documentation order.
[[nodiscard]] std::span<const std::string_view> topic_config_keys();

// Applies one key=value to `cfg`; the error text names the key.
[[nodiscard]] std::expected<void, std::string> apply_topic_config(topic_config& cfg, std::string_view key,
                                                                  std::string_view value);

// defaults + overrides, every override validated.
[[nodiscard]] std::expected<topic_config, std::string> resolve(const topic_config& defaults,
                                                               const config_overrides& overrides);

// key -> value of every key for `cfg` (as DescribeConfigs reports them).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> describe(const topic_config& cfg);

// "delete", "compact" or "compact,delete".
[[nodiscard]] std::string cleanup_policy_name(const storage::log_config& cfg);

// Parses a decimal integer in [min, max]; the error names `key`.
[[nodiscard]] std::expected<std::int64_t, std::string> parse_int(std::string_view key, std::string_view value,
                                                                 std::int64_t min, std::int64_t max);

}  // namespace runnel::meta
