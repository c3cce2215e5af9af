#include "broker/config.h"

#include <fstream>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "broker/meta/topic_config.h"

namespace runnel {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "host:port" with the port in [min_port, 65535]; errors name `key`, show
// `shown` (what the user wrote) and say it is not `what`.
std::expected<std::pair<std::string, std::uint16_t>, std::string> parse_host_port(std::string_view key,
                                                                                  std::string_view shown,
                                                                                  std::string_view text,
                                                                                  std::int64_t min_port,
                                                                                  std::string_view what) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::unexpected(fmt::format("{}: '{}' is not {}", key, shown, what));
  auto port = meta::parse_int(key, text.substr(colon + 1), min_port, 65535);
  if (!port) return std::unexpected(port.error());
  return std::pair{std::string(text.substr(0, colon)), static_cast<std::uint16_t>(*port)};
}

}  // namespace

std::expected<void, std::string> broker_config::set(std::string_view key, std::string_view value) {
  using meta::parse_int;
  auto num = [&](std::int64_t min, std::int64_t max, auto&& store) -> std::expected<void, std::string> {
    auto v = parse_int(key, value, min, max);
    if (!v) return std::unexpected(v.error());
    store(*v);
    return {};
  };
  if (key == "listen") {
    auto hp = parse_host_port(key, value, value, 0, "host:port");
    if (!hp) return std::unexpected(hp.error());
    std::tie(listen_host, listen_port) = std::move(*hp);
    return {};
  }
  if (key == "advertised.listeners") {
    // One plaintext listener; Kafka's PLAINTEXT:// prefix is accepted.
    std::string_view v = value;
    if (v.starts_with("PLAINTEXT://")) v.remove_prefix(12);
    if (value.empty()) {
      advertised_host.clear();
      advertised_port = 0;
      return {};
    }
    constexpr std::string_view one = "one host:port (PLAINTEXT:// only)";
    if (v.find(',') != std::string_view::npos || v.find("://") != std::string_view::npos) {
      return std::unexpected(fmt::format("{}: '{}' is not {}", key, value, one));
    }
    auto hp = parse_host_port(key, value, v, 1, one);
    if (!hp) return std::unexpected(hp.error());
    std::tie(advertised_host, advertised_port) = std::move(*hp);
    return {};
  }
  if (key == "data.dir") {
    if (value.empty()) return std::unexpected(std::string("data.dir: must not be empty"));
    data_dir = std::string(value);
    return {};
  }
  if (key == "shards") return num(1, 256, [&](auto v) { shards = static_cast<unsigned>(v); });
  if (key == "broker.id") return num(0, 1 << 30, [&](auto v) { broker_id = static_cast<std::int32_t>(v); });
  if (key == "max.request.bytes") {
    return num(1024, 1LL << 30, [&](auto v) { max_request_bytes = static_cast<std::uint32_t>(v); });
  }
  if (key == "max.inflight.produce.bytes") {
    return num(1 << 20, 1LL << 40, [&](auto v) { max_inflight_produce_bytes = static_cast<std::uint64_t>(v); });
  }
  if (key == "max.inflight.produce.bytes.per.connection") {
    return num(1024, 1LL << 40, [&](auto v) { max_inflight_produce_bytes_per_connection = static_cast<std::uint64_t>(v); });
  }
  if (key == "max.inflight.requests.per.connection") {
    return num(1, 4096, [&](auto v) { max_inflight_requests_per_connection = static_cast<std::uint32_t>(v); });
  }
  if (key == "connections.max.idle.ms") return num(0, 1LL << 40, [&](auto v) { idle_timeout = std::chrono::milliseconds(v); });
  if (key == "max.connections") return num(1, 10'000'000, [&](auto v) { max_connections = static_cast<std::uint32_t>(v); });
  if (key == "max.connections.per.ip") {
    return num(1, 10'000'000, [&](auto v) { max_connections_per_ip = static_cast<std::uint32_t>(v); });
  }
  if (key == "queued.max.request.bytes") {
    return num(1 << 20, 1LL << 40, [&](auto v) { queued_max_request_bytes = static_cast<std::uint64_t>(v); });
  }
  if (key == "storage.min.free.bytes") return num(-1, 1LL << 50, [&](auto v) { storage_min_free_bytes = v; });
  if (key == "request.read.timeout.ms") {
    return num(0, 1LL << 40, [&](auto v) { request_read_timeout = std::chrono::milliseconds(v); });
  }
  if (key == "log.retention.check.interval.ms") {
    return num(10, 1LL << 40, [&](auto v) { retention_check_interval = std::chrono::milliseconds(v); });
  }
  if (key == "log.cleaner.enable") {
    if (value != "true" && value != "false") {
      return std::unexpected(fmt::format("{}: '{}' is not true or false", key, value));
    }
    cleaner.enable = value == "true";
    return {};
  }
  if (key == "log.cleaner.dedupe.buffer.size") {
    return num(4096, 1LL << 40, [&](auto v) { cleaner.dedupe_buffer_bytes = static_cast<std::uint64_t>(v); });
  }
  if (key == "log.cleaner.backoff.ms") {
    return num(10, 1LL << 40, [&](auto v) { cleaner.backoff = std::chrono::milliseconds(v); });
  }
  if (key == "zookeeper") {
    zookeeper = std::string(value);
    return {};
  }
  if (key == "zookeeper.session.timeout.ms") {
    return num(1000, 60000, [&](auto v) { zookeeper_session_timeout = std::chrono::milliseconds(v); });
  }
  if (key == "replica.lag.time.max.ms") {
    return num(100, 600000, [&](auto v) { replica_lag_time_max = std::chrono::milliseconds(v); });
  }
  if (key == "offsets.topic.num.partitions") {
    return num(1, 1000, [&](auto v) { offsets_topic_partitions = static_cast<std::int32_t>(v); });
  }
  if (key == "offsets.topic.replication.factor") {
    return num(1, 16, [&](auto v) { offsets_topic_replication = static_cast<std::int16_t>(v); });
  }
  if (key == "offsets.topic.segment.bytes") {
    return num(1 << 20, (1LL << 32) - 1, [&](auto v) { offsets_topic_segment_bytes = static_cast<std::uint64_t>(v); });
  }
  if (key == "group.consumer.session.timeout.ms") {
    return num(1, 3'600'000, [&](auto v) { groups.session_timeout = std::chrono::milliseconds(v); });
  }
  if (key == "group.consumer.min.session.timeout.ms") {
    return num(1, 3'600'000, [&](auto v) { groups.min_session_timeout = std::chrono::milliseconds(v); });
  }
  if (key == "group.consumer.max.session.timeout.ms") {
    return num(1, 3'600'000, [&](auto v) { groups.max_session_timeout = std::chrono::milliseconds(v); });
  }
  if (key == "group.consumer.heartbeat.interval.ms") {
    return num(10, 3'600'000, [&](auto v) { groups.heartbeat_interval = std::chrono::milliseconds(v); });
  }
  if (key == "group.consumer.assignor") {
    if (group::find_assignor(value) == nullptr) {
      return std::unexpected(fmt::format("group.consumer.assignor: '{}' is not uniform or range", value));
    }
    groups.default_assignor = std::string(value);
    return {};
  }
  if (key == "group.consumer.max.size") {
    return num(1, 1'000'000, [&](auto v) { groups.max_members = static_cast<std::size_t>(v); });
  }
  if (key == "share.record.lock.duration.ms") {
    return num(100, 3'600'000, [&](auto v) { shares.lock_duration = std::chrono::milliseconds(v); });
  }
  if (key == "share.delivery.attempts.max") {
    return num(1, 1000, [&](auto v) { shares.max_delivery_attempts = static_cast<std::uint16_t>(v); });
  }
  if (key == "share.partition.max.record.locks") {
    return num(1, 1'000'000, [&](auto v) { shares.max_record_locks = static_cast<std::size_t>(v); });
  }
  if (key == "producer.id.expiration.ms") {
    return num(1, 1LL << 40, [&](auto v) { topic_defaults.log.producer_id_expiration = std::chrono::milliseconds(v); });
  }
  if (key == "rack") {
    rack = std::string(value);
    return {};
  }
  if (key.starts_with("log.")) {
    auto r = meta::apply_topic_config(topic_defaults, key.substr(4), value);
    if (!r) return std::unexpected(fmt::format("log.{}", r.error()));
    return {};
  }
  return std::unexpected(fmt::format("{}: unknown config key", key));
}

std::expected<void, std::string> broker_config::load_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected(fmt::format("{}: cannot open config file", path.string()));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    auto eq = t.find('=');
    if (eq == std::string_view::npos) return std::unexpected(fmt::format("{}:{}: expected key=value", path.string(), n));
    if (auto r = set(trim(t.substr(0, eq)), trim(t.substr(eq + 1))); !r) {
      return std::unexpected(fmt::format("{}:{}: {}", path.string(), n, r.error()));
    }
  }
  return {};
}

}  // namespace runnel
