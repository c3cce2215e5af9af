#include "tests/integration/cluster_harness.h"

#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "runnel/consumer.h"
#include "tests/support/eventually.h"

namespace runnel::testing {

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

cluster_harness::cluster_harness(int brokers, std::vector<std::string> extra_args, bool proxied,
                                 before_start_hook before_start, env_hook env_of)
    : cluster_harness(brokers, std::move(extra_args), proxied, std::move(before_start), std::move(env_of), nullptr) {}

cluster_harness::cluster_harness(int brokers, netns_network& net, std::vector<std::string> extra_args)
    : cluster_harness(brokers, std::move(extra_args), false, {}, {}, &net) {}

cluster_harness::cluster_harness(int brokers, std::vector<std::string> extra_args, bool proxied,
                                 before_start_hook before_start, env_hook env_of, netns_network* net)
    : net_(net),
      zk_(std::make_unique<zk_server>(dir_ / "zk", net != nullptr ? net->hub_address() : "127.0.0.1")),
      connect_(zk_->connect_string() + "/runnel"),
      extra_(std::move(extra_args)),
      proxied_(proxied),
      before_start_(std::move(before_start)),
      env_of_(std::move(env_of)) {
  for (std::int32_t id = 1; id <= brokers; ++id) start(id);
  eventually([&] { return cluster().value_or(cluster_info{}).brokers.size() == static_cast<std::size_t>(brokers); },
             std::chrono::seconds(20));
}

std::filesystem::path cluster_harness::data_dir(std::int32_t id) const { return dir_ / ("b" + std::to_string(id)); }

std::string cluster_harness::bootstrap() const {
  std::string s;
  for (const auto& [id, b] : brokers_) {
    if (!b || paused_.contains(id) || cut_.contains(id)) continue;
    if (!s.empty()) s += ",";
    s += b->bootstrap();
  }
  return s;
}

void cluster_harness::start(std::int32_t id) {
  std::string zk = connect_;
  if (proxied_) {
    if (!proxies_.contains(id)) {
      proxies_[id] = std::make_unique<fault_proxy>();
      zk_proxies_[id] = std::make_unique<fault_proxy>(zk_->port());
    }
    zk = zk_proxies_[id]->address() + "/runnel";
  }
  std::vector<std::string> args{"--zookeeper",
                                zk,
                                "--broker-id",
                                std::to_string(id),
                                "--set",
                                "zookeeper.session.timeout.ms=2000",
                                "--set",
                                "replica.lag.time.max.ms=2000"};
  if (proxied_) {
    args.push_back("--set");
    args.push_back("advertised.listeners=" + proxies_[id]->address());
  }
  args.insert(args.end(), extra_.begin(), extra_.end());
  const std::string host = net_ != nullptr ? net_->address(id) : "127.0.0.1";
  if (ports_.contains(id) || net_ != nullptr) {
    args.push_back("--listen");
    args.push_back(host + ":" + std::to_string(ports_.contains(id) ? ports_[id] : 0));
  }
  if (before_start_) before_start_(id, data_dir(id));
  brokers_[id] = std::make_unique<broker_process>(data_dir(id), args,
                                                  env_of_ ? env_of_(id) : std::vector<std::string>{},
                                                  net_ != nullptr ? net_->launcher(id) : std::vector<std::string>{});
  ports_[id] = brokers_[id]->port();
  if (proxied_) proxies_[id]->set_target(brokers_[id]->port());
}

void cluster_harness::kill9(std::int32_t id) {
  if (!running(id)) return;
  brokers_[id]->kill9();
  brokers_[id].reset();
  paused_.erase(id);
}

int cluster_harness::stop(std::int32_t id) {
  if (!running(id)) return -1;
  const int status = brokers_[id]->stop();
  brokers_[id].reset();
  return status;
}

void cluster_harness::pause(std::int32_t id) {
  const pid_t pid = brokers_.at(id)->pid();
  ::kill(pid, SIGSTOP);
  paused_.insert(id);
  // SIGSTOP lands asynchronously: wait (bounded) until every thread shows
  // state T, so nothing the test does next can reach a running broker.
  auto all_stopped = [pid] {
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      const std::string stat = read_file(t.path() / "stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'T') return false;
    }
    return !ec;
  };
  eventually(all_stopped, std::chrono::seconds(2));
}
void cluster_harness::resume(std::int32_t id) {
  ::kill(brokers_.at(id)->pid(), SIGCONT);
  paused_.erase(id);
}

void cluster_harness::cut(std::int32_t id) {
  REQUIRE_MESSAGE(net_ != nullptr, "cut() needs a cluster on a netns_network");
  net_->cut(id);
  cut_.insert(id);
}

void cluster_harness::heal(std::int32_t id) {
  REQUIRE_MESSAGE(net_ != nullptr, "heal() needs a cluster on a netns_network");
  net_->heal(id);
  cut_.erase(id);
}

result<topic_info> cluster_harness::describe(const std::string& topic) const {
  admin_config c;
  c.bootstrap = bootstrap();
  c.timeout = std::chrono::seconds(5);
  auto a = admin::connect(c);
  if (!a) return std::unexpected(a.error());
  return (*a)->describe_topic(topic);
}

result<cluster_info> cluster_harness::cluster() const {
  admin_config c;
  c.bootstrap = bootstrap();
  c.timeout = std::chrono::seconds(5);
  auto a = admin::connect(c);
  if (!a) return std::unexpected(a.error());
  return (*a)->describe_cluster();
}

std::optional<topic_info> cluster_harness::wait_for(const std::string& topic,
                                                    const std::function<bool(const topic_info&)>& ok,
                                                    std::chrono::milliseconds limit) const {
  std::optional<topic_info> last;
  const bool met = eventually(
      [&] {
        auto t = describe(topic);
        if (!t) return false;
        last = *t;
        return ok(*t);
      },
      limit);
  if (!met) return std::nullopt;
  return last;
}

// --- ack_checker -----------------------------------------------------------------

void ack_checker::acked(std::int32_t partition, std::int64_t offset, const std::string& payload) {
  std::lock_guard l(mu_);
  auto [it, fresh] = acked_[partition].try_emplace(offset, payload);
  if (!fresh && it->second != payload) {
    conflicts_.push_back("partition " + std::to_string(partition) + " offset " + std::to_string(offset) +
                         ": acknowledged " + it->second + " and " + payload);
  }
}

std::size_t ack_checker::acked_count() const {
  std::lock_guard l(mu_);
  std::size_t n = 0;
  for (const auto& [p, m] : acked_) n += m.size();
  return n;
}

std::string ack_checker::report::summary() const {
  std::ostringstream s;
  s << "acked " << acked << ", lost " << lost << ", changed " << changed << ", reordered " << reordered
    << ", duplicates " << duplicates << ", conflicting " << conflicting;
  for (const auto& p : problems) s << "\n  " << p;
  return s.str();
}

ack_checker::report ack_checker::check(const std::map<std::int32_t, std::map<std::int64_t, std::string>>& stored) const {
  std::lock_guard l(mu_);
  report r;
  auto problem = [&r](std::string s) {
    if (r.problems.size() < 10) r.problems.push_back(std::move(s));
  };
  auto seq_of = [](const std::string& payload) {
    const auto dash = payload.rfind('-');
    return dash == std::string::npos ? -1LL : std::stoll(payload.substr(dash + 1));
  };
  r.conflicting = conflicts_.size();
  for (const auto& c : conflicts_) problem(c);
  for (const auto& [p, acks] : acked_) {
    r.acked += acks.size();
    static const std::map<std::int64_t, std::string> none;
    auto sit = stored.find(p);
    const auto& have = sit == stored.end() ? none : sit->second;
    for (const auto& [off, payload] : acks) {
      auto it = have.find(off);
      if (it == have.end()) {
        ++r.lost;
        problem("partition " + std::to_string(p) + " offset " + std::to_string(off) + " (" + payload + ") lost");
      } else if (it->second != payload) {
        ++r.changed;
        problem("partition " + std::to_string(p) + " offset " + std::to_string(off) + " holds " + it->second +
                ", acknowledged " + payload);
      }
    }
    // Order: first copies of acknowledged payloads appear in send order.
    std::set<std::string> acked_payloads;
    for (const auto& [off, payload] : acks) acked_payloads.insert(payload);
    std::set<std::string> seen;
    long long last = -1;
    for (const auto& [off, payload] : have) {
      if (!seen.insert(payload).second) {
        ++r.duplicates;
        continue;
      }
      if (!acked_payloads.contains(payload)) continue;
      const long long s = seq_of(payload);
      if (s < last) {
        ++r.reordered;
        problem("partition " + std::to_string(p) + " offset " + std::to_string(off) + " (" + payload +
                ") comes after a later send");
      }
      last = std::max(last, s);
    }
  }
  return r;
}

std::map<std::int32_t, std::map<std::int64_t, std::string>> read_partitions(const std::string& bootstrap,
                                                                            const std::string& topic,
                                                                            std::int32_t partitions) {
  std::map<std::int32_t, std::map<std::int64_t, std::string>> out;
  admin_config ac;
  ac.bootstrap = bootstrap;
  ac.timeout = std::chrono::seconds(10);
  auto a = admin::connect(ac);
  if (!a) return out;
  consumer_config cc;
  cc.bootstrap = bootstrap;
  auto cons = consumer::connect(cc);
  if (!cons) return out;
  std::map<std::int32_t, std::int64_t> end;
  std::vector<topic_partition_ref> refs;
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto e = (*a)->list_offset(topic, p, latest_offset);
    end[p] = e.value_or(0);
    refs.push_back({topic, p});
  }
  if (!(*cons)->assign(refs)) return out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto done = [&] {
    return std::all_of(end.begin(), end.end(),
                       [&](const auto& kv) { return (*cons)->position({topic, kv.first}) >= kv.second; });
  };
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    auto recs = (*cons)->poll(std::chrono::milliseconds(200));
    if (!recs) continue;
    for (const auto& r : *recs) out[r.partition][r.offset] = std::string(r.value.value_or(""));
  }
  return out;
}

bool replicas_identical(const cluster_harness& c, const std::vector<std::int32_t>& ids, const std::string& topic,
                        std::int32_t partition, std::chrono::milliseconds limit, std::string* why) {
  auto files_of = [&](std::int32_t id) {
    std::map<std::string, std::string> files;
    const auto dir = c.data_dir(id) / (topic + "-" + std::to_string(partition));
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".log") files[e.path().filename().string()] = read_file(e.path());
    }
    return files;
  };
  std::string last_why;
  const bool same = eventually(
      [&] {
        auto first = files_of(ids.front());
        for (std::size_t i = 1; i < ids.size(); ++i) {
          auto other = files_of(ids[i]);
          if (other != first) {
            std::size_t a = 0, b = 0;
            for (const auto& [n, d] : first) a += d.size();
            for (const auto& [n, d] : other) b += d.size();
            last_why = "broker " + std::to_string(ids.front()) + " has " + std::to_string(a) + " bytes in " +
                       std::to_string(first.size()) + " segments, broker " + std::to_string(ids[i]) + " " +
                       std::to_string(b) + " in " + std::to_string(other.size());
            return false;
          }
        }
        return true;
      },
      limit);
  if (why != nullptr) *why = last_why;
  return same;
}

}  // namespace runnel::testing
