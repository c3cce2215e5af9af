#pragma once
// runnel-broker configuration: defaults, then the --config file (key=value
// lines, '#' comments), then --set key=value, in that order. Unknown keys
// and bad values are refused at start with a message naming the key.
//
// Broker keys:
//   listen                                host:port            127.0.0.1:9292
//   advertised.listeners                  [PLAINTEXT://]host:port  (empty: the listen address)
//   data.dir                              path                 ./data
//   shards                                1..256               hardware threads
//   broker.id                             int                  0
//   max.request.bytes                     frame limit          104857600
//   max.inflight.produce.bytes            per broker           268435456
//   max.inflight.produce.bytes.per.connection                  67108864
//   max.inflight.requests.per.connection  1..4096              256
//   connections.max.idle.ms               0 = never            600000
//   max.connections                       1..10000000          100000
//   max.connections.per.ip                1..10000000          100000
//   queued.max.request.bytes              request bodies being read or handled, per broker
//                                         (>= 1 MiB)           536870912
//   request.read.timeout.ms               a started frame's bytes must all arrive within it
//                                         (0 = never)          30000
//   storage.min.free.bytes                below it produce answers STORAGE_FULL
//                                         (-1: min(1 GiB, 5 % of the volume))   -1
//   log.retention.check.interval.ms                            300000
//   log.cleaner.enable                    true | false         true
//   log.cleaner.dedupe.buffer.size        bytes (>= 4096)      33554432
//   log.cleaner.backoff.ms                10..                 15000
//   zookeeper                             host:port[/chroot]   (empty: standalone)
//   zookeeper.session.timeout.ms          1000..60000          6000
//   rack                                  any                  (empty)
//   replica.lag.time.max.ms               100..600000          10000
//   offsets.topic.num.partitions          1..1000              16
//   offsets.topic.replication.factor      1..16                3 (at most the live brokers)
//   offsets.topic.segment.bytes           bytes                104857600
//   group.consumer.session.timeout.ms     min..max             45000
//   group.consumer.min.session.timeout.ms                      500
//   group.consumer.max.session.timeout.ms                      600000
//   group.consumer.heartbeat.interval.ms  10..3600000          5000
//   group.consumer.assignor               uniform | range      uniform
//   group.consumer.max.size               1..1000000           10000
//   share.record.lock.duration.ms         100..3600000         30000 (share groups: how long an acquired record is the member's)
//   share.delivery.attempts.max           1..1000              5 (deliveries before a record is archived)
//   share.partition.max.record.locks      1..1000000           2000 (records in flight per share partition)
// Topic defaults: every topic key (meta/topic_config.h) prefixed with
// "log." (log.segment.bytes, log.retention.ms, ...), as in Kafka.

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "broker/group/membership.h"
#include "broker/group/share_partition.h"
#include "broker/meta/types.h"
#include "broker/storage/types.h"

namespace runnel {

struct broker_config {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 9292;
  // What metadata, FindCoordinator and the ZooKeeper registration tell
  // clients and other brokers to connect to (a proxy or NAT in front of
  // the listener); empty host: the listen address itself.
  std::string advertised_host;
  std::uint16_t advertised_port = 0;
  [[nodiscard]] const std::string& advertise_host() const { return advertised_host.empty() ? listen_host : advertised_host; }
  [[nodiscard]] std::uint16_t advertise_port() const { return advertised_host.empty() ? listen_port : advertised_port; }
  std::filesystem::path data_dir = "./data";
  unsigned shards = 0;  // 0: one per hardware thread
  std::int32_t broker_id = 0;
  std::uint32_t max_request_bytes = 100U << 20;
  std::uint64_t max_inflight_produce_bytes = 256ULL << 20;
  std::uint64_t max_inflight_produce_bytes_per_connection = 64ULL << 20;
  std::uint32_t max_inflight_requests_per_connection = 256;
  std::chrono::milliseconds idle_timeout{600'000};
  // Refused at accept past these (the socket is closed at once).
  std::uint32_t max_connections = 100'000;
  std::uint32_t max_connections_per_ip = 100'000;
  // Every request body being read or handled counts; past it, reading
  // stops (a connection holding no request still reads one).
  std::uint64_t queued_max_request_bytes = 512ULL << 20;
  // A frame whose head arrived must be complete within this (slowloris).
  std::chrono::milliseconds request_read_timeout{30'000};
  // Free bytes the data directory's volume keeps for reads, deletes,
  // retention and metadata: produce stops below it. -1: min(1 GiB, 5 %).
  std::int64_t storage_min_free_bytes = -1;
  std::chrono::milliseconds retention_check_interval{300'000};
  storage::cleaner_config cleaner;  // log.cleaner.*: log compaction
  std::string zookeeper;  // empty: standalone mode
  std::chrono::milliseconds zookeeper_session_timeout{6'000};
  std::string rack;
  // A follower that has not caught up for this long leaves the ISR.
  std::chrono::milliseconds replica_lag_time_max{10'000};
  meta::topic_config topic_defaults;
  // Consumer groups: the internal offsets topic and the protocol's limits.
  std::int32_t offsets_topic_partitions = 16;
  std::int16_t offsets_topic_replication = 3;
  std::uint64_t offsets_topic_segment_bytes = 100ULL << 20;
  group::group_limits groups;
  group::share_limits shares;  // share.*: share groups (ADR 0016)

  // Applies one key=value; the error text names the key.
  std::expected<void, std::string> set(std::string_view key, std::string_view value);
  // Reads a key=value file; errors name the file and line.
  std::expected<void, std::string> load_file(const std::filesystem::path& path);
};

}  // namespace runnel
