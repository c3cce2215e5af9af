#pragma once
// cluster_harness: a real ZooKeeper and N real runnel-broker processes (ids
// 1..N) on 127.0.0.1 for fault tests, each with its own data directory;
// every process is stopped by PID when the harness goes. With `proxied`,
// each broker advertises a fault proxy in front of its listener (so clients
// and the other brokers' replica fetches pass through it) and reaches
// ZooKeeper through a second one: proxy(id) and zk_proxy(id) make the
// network faults. On a netns_network, broker `id` runs in host `id`'s
// namespace and ZooKeeper listens on the hub: cut(id) partitions it from
// everything, silently.
//
// ack_checker: the fault tests' judge. It records every acknowledged
// (partition, offset, payload) and, after the cluster healed, compares them
// with what the partitions hold: nothing acknowledged lost, nothing
// reordered within a partition, duplicates counted, two acknowledgements
// naming one offset with different payloads a failure; and every replica's
// segment files identical.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runnel/admin.h"
#include "tests/support/broker_process.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/netns.h"
#include "tests/support/temp_dir.h"
#include "tests/support/zk_server.h"

namespace runnel::testing {

class cluster_harness {
 public:
  // Runs before broker `id` starts, the first time and at every restart,
  // with its data directory (power_loss_test mounts a filesystem there).
  using before_start_hook = std::function<void(std::int32_t id, const std::filesystem::path& data_dir)>;
  // Extra environment ("NAME=value") for broker `id`, at every start.
  using env_hook = std::function<std::vector<std::string>(std::int32_t id)>;
  explicit cluster_harness(int brokers = 3, std::vector<std::string> extra_args = {}, bool proxied = false,
                           before_start_hook before_start = {}, env_hook env_of = {});
  // Brokers 1..`brokers` on hosts 1..`brokers` of `net` (which outlives the harness).
  cluster_harness(int brokers, netns_network& net, std::vector<std::string> extra_args = {});

  zk_server& zk() { return *zk_; }
  [[nodiscard]] std::filesystem::path data_dir(std::int32_t id) const;
  [[nodiscard]] bool running(std::int32_t id) const { return brokers_.contains(id) && brokers_.at(id) != nullptr; }
  [[nodiscard]] std::string address(std::int32_t id) const { return brokers_.at(id)->bootstrap(); }
  // In front of broker `id` (what it advertises) and between it and
  // ZooKeeper; only with `proxied`.
  fault_proxy& proxy(std::int32_t id) { return *proxies_.at(id); }
  fault_proxy& zk_proxy(std::int32_t id) { return *zk_proxies_.at(id); }
  // Every running broker's own address (not its proxy's), comma-separated;
  // a paused or cut-off one is left out (it would hold every request to it).
  [[nodiscard]] std::string bootstrap() const;

  // A restart listens on the port the broker had before, so a client whose
  // bootstrap names only brokers that all went down finds them again.
  void start(std::int32_t id);
  void kill9(std::int32_t id);
  int stop(std::int32_t id);  // SIGTERM: controlled shutdown
  void pause(std::int32_t id);   // SIGSTOP
  void resume(std::int32_t id);  // SIGCONT
  // Only on a netns_network: broker `id`'s link down (and up again).
  void cut(std::int32_t id);
  void heal(std::int32_t id);

  // Through any running broker; errors as values.
  result<topic_info> describe(const std::string& topic) const;
  result<cluster_info> cluster() const;
  // Waits (bounded) until `ok(topic_info)` holds; the last description.
  std::optional<topic_info> wait_for(const std::string& topic, const std::function<bool(const topic_info&)>& ok,
                                     std::chrono::milliseconds limit) const;

 private:
  cluster_harness(int brokers, std::vector<std::string> extra_args, bool proxied, before_start_hook before_start,
                  env_hook env_of, netns_network* net);

  temp_dir dir_;
  netns_network* net_ = nullptr;
  std::unique_ptr<zk_server> zk_;
  std::string connect_;
  std::vector<std::string> extra_;
  bool proxied_ = false;
  before_start_hook before_start_;
  env_hook env_of_;
  std::map<std::int32_t, std::uint16_t> ports_;  // each broker's port, kept across restarts
  std::set<std::int32_t> paused_;
  std::set<std::int32_t> cut_;
  std::map<std::int32_t, std::unique_ptr<fault_proxy>> proxies_;
  std::map<std::int32_t, std::unique_ptr<fault_proxy>> zk_proxies_;
  std::map<std::int32_t, std::unique_ptr<broker_process>> brokers_;
};

class ack_checker {
 public:
  // Thread-safe: producers' callbacks record here.
  void acked(std::int32_t partition, std::int64_t offset, const std::string& payload);
  [[nodiscard]] std::size_t acked_count() const;

  struct report {
    std::size_t acked = 0;
    std::size_t lost = 0;        // acknowledged, not in the partition
    std::size_t changed = 0;     // acknowledged offset holds another payload
    std::size_t reordered = 0;   // acknowledged payloads out of send order
    std::size_t duplicates = 0;  // payloads stored more than once
    std::size_t conflicting = 0; // acknowledgements naming an offset another payload was acknowledged at
    std::vector<std::string> problems;  // the first few, for the failure message
    [[nodiscard]] bool ok() const { return lost == 0 && changed == 0 && reordered == 0 && conflicting == 0; }
    [[nodiscard]] std::string summary() const;
  };
  // `stored`: per partition, offset -> payload as read from its leader.
  // Payloads must end in a zero-padded send sequence ("...-000123").
  [[nodiscard]] report check(const std::map<std::int32_t, std::map<std::int64_t, std::string>>& stored) const;

 private:
  mutable std::mutex mu_;
  std::map<std::int32_t, std::map<std::int64_t, std::string>> acked_;
  std::vector<std::string> conflicts_;  // "partition P offset O: acknowledged A and B"
};

// Every record of `partitions` partitions of `topic`, read from the leaders
// through `bootstrap`, until each partition reaches its latest offset.
std::map<std::int32_t, std::map<std::int64_t, std::string>> read_partitions(const std::string& bootstrap,
                                                                            const std::string& topic,
                                                                            std::int32_t partitions);

// Whether the replicas `ids` of topic-partition hold identical segment
// files (bytes and names), waiting up to `limit` for followers to catch up.
bool replicas_identical(const cluster_harness& c, const std::vector<std::int32_t>& ids, const std::string& topic,
                        std::int32_t partition, std::chrono::milliseconds limit, std::string* why = nullptr);

}  // namespace runnel::testing
