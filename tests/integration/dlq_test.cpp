// The dead-letter queue through runnel::processor, real brokers and real
// processes: poisoned records land in the DLQ exactly once with their
// failure headers while every good record is processed (in key order);
// a processor killed -9 between the DLQ write and the commit still leaves
// one copy (and, as the negative control, two without the DLQ's window);
// a leader failover on the DLQ topic; runnelctl dlq list, inspect and an
// idempotent replay; the error paths.

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/processor.h"
#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/topic_reader.h"
#include "tests/support/broker_process.h"
#include "tests/support/child_process.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace std::chrono_literals;
using runnel::testing::broker_process;
using runnel::testing::connect_admin;
using runnel::testing::read_topic;
using runnel::testing::stored_record;
using runnel::testing::eventually;
using runnel::testing::run_command;
using runnel::testing::child_process;
using runnel::testing::temp_dir;

namespace {

// How many DLQ copies each source record (by "partition/offset") has.
std::map<std::string, int> copies_per_source(const std::vector<stored_record>& dlq) {
  std::map<std::string, int> n;
  for (const auto& r : dlq) {
    auto p = r.headers.find(std::string(dlq_header::partition));
    auto o = r.headers.find(std::string(dlq_header::offset));
    ++n[(p == r.headers.end() ? "?" : p->second) + "/" + (o == r.headers.end() ? "?" : o->second)];
  }
  return n;
}

// The checker: exactly the `expected` sources, each exactly once.
bool exactly_one_copy_each(const std::map<std::string, int>& copies, const std::set<std::string>& expected,
                           std::string* why) {
  std::ostringstream s;
  bool ok = copies.size() == expected.size();
  if (!ok) s << copies.size() << " sources in the DLQ, " << expected.size() << " expected; ";
  for (const auto& [src, n] : copies) {
    if (!expected.contains(src)) {
      ok = false;
      s << src << " should not be there; ";
    }
    if (n != 1) {
      ok = false;
      s << src << " has " << n << " copies; ";
    }
  }
  *why = s.str();
  return ok;
}

// A processor on its own thread; stop() ends run() and returns its result.
class background_processor {
 public:
  background_processor(processor_config cfg, processor::handler h) {
    auto p = processor::connect(std::move(cfg));
    REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().what()));
    p_ = std::move(*p);
    thread_ = std::thread([this, h = std::move(h)] {
      auto r = p_->run(h);
      std::lock_guard lk(mu_);
      result_ = r;
      finished_ = true;
    });
  }
  ~background_processor() { (void)stop(); }
  background_processor(const background_processor&) = delete;
  background_processor& operator=(const background_processor&) = delete;
  background_processor(background_processor&&) = delete;
  background_processor& operator=(background_processor&&) = delete;

  result<void> stop() {
    if (thread_.joinable()) {
      p_->stop();
      thread_.join();
    }
    return result_;
  }
  [[nodiscard]] bool finished() const {
    std::lock_guard lk(mu_);
    return finished_;
  }
  processor& get() { return *p_; }

 private:
  std::unique_ptr<processor> p_;
  std::thread thread_;
  mutable std::mutex mu_;
  result<void> result_;
  bool finished_ = false;
};

processor_config base_config(const std::string& bootstrap, const std::string& group, const std::string& topic) {
  processor_config cfg;
  cfg.consumer.bootstrap = bootstrap;
  cfg.consumer.group_id = group;
  cfg.consumer.fetch_max_wait = 100ms;
  cfg.topics = {topic};
  cfg.commit_interval = 100ms;
  cfg.retry.max_attempts = 3;
  cfg.retry.initial_backoff = 30ms;
  cfg.retry.max_backoff = 200ms;
  return cfg;
}

void produce(const std::string& bootstrap, const std::string& topic, const std::vector<std::pair<std::string, std::string>>& kv) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (std::size_t i = 0; i < kv.size(); ++i) {
    sent.push_back((*p)->send(topic, kv[i].first, kv[i].second, {{"trace", "t-" + std::to_string(i)}}));
  }
  for (auto& f : sent) REQUIRE(f.get().has_value());
}

std::string header_or(const stored_record& r, std::string_view k) {
  auto it = r.headers.find(std::string(k));
  return it == r.headers.end() ? "<none>" : it->second;
}

// A dlq_processor_child process, killed by PID when the test ends.
std::vector<std::string> child_argv(const std::string& bootstrap, const std::string& group, const std::string& topic,
                                    const std::filesystem::path& log, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{RUNNEL_DLQ_CHILD_BIN, bootstrap, group, topic, log.string(), "--session-ms", "1000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// runnelctl --bootstrap B ARGS...
runnel::testing::command_result runnelctl(const std::string& bootstrap, const std::vector<std::string>& args) {
  std::vector<std::string> argv{RUNNELCTL_BIN, "--bootstrap", bootstrap};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, 60);
}

std::vector<std::string> lines_of(const std::filesystem::path& p, char kind) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l[0] == kind) out.push_back(l);
  }
  return out;
}

std::set<std::string> finished_values(const std::filesystem::path& p) {
  std::set<std::string> out;
  for (const auto& l : lines_of(p, 'P')) out.insert(l.substr(l.rfind(' ') + 1));
  return out;
}

}  // namespace

TEST_CASE("dlq: poisoned records land in the DLQ exactly once with their failure headers, every good record is processed in key order") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "offsets.topic.num.partitions=2"});
  auto a = connect_admin(broker.bootstrap());
  REQUIRE(a->create_topic("orders", 3).has_value());
  // 300 records over 30 keys: "poison" fails every call (DLQ after 3),
  // "dead" fails for good at once, "flaky" fails once, then succeeds.
  std::vector<std::pair<std::string, std::string>> kv;
  std::set<std::string> goods, bad;
  for (int i = 0; i < 300; ++i) {
    std::string v = i % 50 == 7 ? "poison-" : i % 50 == 31 ? "dead-" : i % 40 == 3 ? "flaky-" : "good-";
    v += std::to_string(i);
    (v.starts_with("poison") || v.starts_with("dead") ? bad : goods).insert(v);
    kv.emplace_back("k" + std::to_string(i % 30), v);
  }
  produce(broker.bootstrap(), "orders", kv);

  std::mutex mu;
  std::vector<std::string> events;  // "ok <key> <partition> <offset>" / "fail <value> <partition> <offset>" / "dlq ..."
  std::map<std::string, int> calls;
  std::set<std::string> processed;
  auto cfg = base_config(broker.bootstrap(), "g-orders", "orders");
  cfg.on_dead_letter = [&](const record_view& r, const dead_letter& d) {
    std::lock_guard lk(mu);
    events.push_back("dlq " + std::string(*r.value) + " " + std::to_string(r.partition) + " " + std::to_string(r.offset));
    CHECK(d.dlq_topic == "orders.dlq");
    CHECK(d.partition == r.partition);
    CHECK_FALSE(d.duplicate);
  };
  background_processor bp(cfg, [&](const record_view& r) {
    std::lock_guard lk(mu);
    const std::string v(*r.value);
    const int n = ++calls[v];
    const std::string where = std::to_string(r.partition) + " " + std::to_string(r.offset);
    if (v.starts_with("poison") || (v.starts_with("flaky") && n == 1)) {
      events.push_back("fail " + v + " " + where);
      if (v.starts_with("flaky")) throw std::runtime_error("flaky the first time");
      return process_result::retry_later("poisoned " + v);
    }
    if (v.starts_with("dead")) {
      events.push_back("fail " + v + " " + where);
      return process_result::permanent("dead on arrival " + v);
    }
    events.push_back("ok " + std::string(*r.key) + " " + where);
    processed.insert(v);
    return process_result::ok();
  });
  REQUIRE(eventually([&] { return bp.get().stats().dead_lettered == static_cast<std::int64_t>(bad.size()); }, 30s));
  REQUIRE(eventually([&] {
    std::lock_guard lk(mu);
    return processed.size() == goods.size();
  }, 30s));
  REQUIRE(bp.stop().has_value());
  const auto st = bp.get().stats();
  CHECK(st.dlq_duplicates == 0);
  CHECK(st.done == static_cast<std::int64_t>(goods.size()));

  // Every good record processed, each key's successes in offset order.
  CHECK(processed == goods);
  std::map<std::string, std::pair<std::int32_t, std::int64_t>> last_of_key;
  bool flowed = false;  // a later record of the partition finished while a poison waited
  std::map<std::string, std::size_t> first_fail;
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::istringstream in(events[i]);
    std::string what, name;
    std::int32_t p = 0;
    std::int64_t o = 0;
    in >> what >> name >> p >> o;
    if (what == "ok") {
      auto it = last_of_key.find(name);
      if (it != last_of_key.end()) CHECK_MESSAGE(it->second.second < o, "key " << name << " out of order at " << o);
      last_of_key[name] = {p, o};
    } else if (what == "fail" && !first_fail.contains(name)) {
      first_fail[name] = i;
    } else if (what == "dlq" && name.starts_with("poison")) {
      for (std::size_t k = first_fail[name]; k < i && !flowed; ++k) {
        std::istringstream e(events[k]);
        std::string w, n2;
        std::int32_t p2 = 0;
        std::int64_t o2 = 0;
        e >> w >> n2 >> p2 >> o2;
        flowed = w == "ok" && p2 == p && o2 > o;
      }
    }
  }
  CHECK(flowed);

  // The DLQ: one copy of each bad record, in its source partition, with
  // the source's key, value and headers and the failure headers.
  const auto source = read_topic(broker.bootstrap(), "orders");
  std::map<std::string, stored_record> by_value;
  for (const auto& r : source) by_value[r.value] = r;
  const auto dlq = read_topic(broker.bootstrap(), "orders.dlq");
  std::set<std::string> expected;
  for (const auto& v : bad) expected.insert(std::to_string(by_value[v].partition) + "/" + std::to_string(by_value[v].offset));
  std::string why;
  CHECK_MESSAGE(exactly_one_copy_each(copies_per_source(dlq), expected, &why), why);
  for (const auto& d : dlq) {
    const auto& src = by_value[d.value];
    CHECK(bad.contains(d.value));
    CHECK(d.partition == src.partition);
    CHECK(d.key == src.key);
    CHECK(header_or(d, "trace") == header_or(src, "trace"));
    CHECK(header_or(d, dlq_header::topic) == "orders");
    CHECK(header_or(d, dlq_header::partition) == std::to_string(src.partition));
    CHECK(header_or(d, dlq_header::offset) == std::to_string(src.offset));
    CHECK(header_or(d, dlq_header::timestamp) == std::to_string(src.timestamp_ms));
    CHECK(header_or(d, dlq_header::group) == "g-orders");
    CHECK(header_or(d, msg_id_header) == dlq_msg_id("g-orders", "orders", src.partition, src.offset));
    const bool poison = d.value.starts_with("poison");
    CHECK(header_or(d, dlq_header::attempts) == (poison ? "3" : "1"));
    CHECK(header_or(d, dlq_header::error) == (poison ? "poisoned " : "dead on arrival ") + d.value);
    const auto first = std::stoll(header_or(d, dlq_header::first_failure));
    const auto last = std::stoll(header_or(d, dlq_header::last_failure));
    CHECK(first > 0);
    CHECK(first <= last);
    if (poison) CHECK(last > first);  // two backoffs apart
  }
  // The DLQ topic as it was made: the source's partitions, a window, the marker.
  auto t = a->describe_topic("orders.dlq");
  REQUIRE(t.has_value());
  CHECK(t->partitions.size() == 3);
  auto c = a->describe_configs("orders.dlq");
  REQUIRE(c.has_value());
  CHECK(c->at("dedup.window.ms").value == std::to_string(std::chrono::milliseconds(std::chrono::hours(24 * 7)).count()));
  CHECK(c->at("dead.letter.topic").value == "true");
  // Everything is committed: the group's offsets are the log ends.
  auto committed = a->committed_offsets("g-orders");
  REQUIRE(committed.has_value());
  for (std::int32_t p = 0; p < 3; ++p) {
    CHECK(committed->at({"orders", p}).offset == *a->list_offset("orders", p, latest_offset));
  }
}

TEST_CASE("dlq: a partition at max_pending_per_partition reads its records again later: each handled once, in order") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "offsets.topic.num.partitions=2"});
  auto a = connect_admin(broker.bootstrap());
  REQUIRE(a->create_topic("one-key", 1).has_value());
  // One key: the first record retries for a while and everything after it
  // waits behind it, far more than the 5 the processor may hold.
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 60; ++i) kv.emplace_back("k", (i == 0 ? "poison-" : "good-") + std::to_string(i));
  produce(broker.bootstrap(), "one-key", kv);
  std::mutex mu;
  std::vector<std::int64_t> handled;  // offsets finished, in order
  auto cfg = base_config(broker.bootstrap(), "g-one-key", "one-key");
  cfg.max_pending_per_partition = 5;
  cfg.retry.max_attempts = 4;
  cfg.retry.initial_backoff = 150ms;
  background_processor bp(cfg, [&](const record_view& r) {
    if (r.value->starts_with("poison")) return process_result::retry_later("not yet");
    std::lock_guard lk(mu);
    handled.push_back(r.offset);
    return process_result::ok();
  });
  REQUIRE(eventually([&] {
    std::lock_guard lk(mu);
    return handled.size() >= 59;
  }, 30s));
  REQUIRE(bp.stop().has_value());
  std::vector<std::int64_t> want;
  for (std::int64_t o = 1; o < 60; ++o) want.push_back(o);
  CHECK(handled == want);  // once each, in key order
  CHECK(bp.get().stats().dead_lettered == 1);
  CHECK(read_topic(broker.bootstrap(), "one-key.dlq").size() == 1);
  auto committed = a->committed_offsets("g-one-key");
  REQUIRE(committed.has_value());
  CHECK(committed->at({"one-key", 0}).offset == 60);
}

TEST_CASE("dlq: a processor killed -9 between the DLQ write and the commit leaves one copy, and two without the window (negative control)") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "offsets.topic.num.partitions=2", "--set",
                                       "group.consumer.heartbeat.interval.ms=200"});
  auto a = connect_admin(broker.bootstrap());
  // The negative control's DLQ exists without a message-id window.
  REQUIRE(a->create_topic("jobs-nw.dlq", 2).has_value());
  for (const std::string topic : {"jobs", "jobs-nw"}) {
    CAPTURE(topic);
    const bool control = topic == "jobs-nw";
    REQUIRE(a->create_topic(topic, 2).has_value());
    std::vector<std::pair<std::string, std::string>> kv;
    std::set<std::string> goods;
    for (int i = 0; i < 60; ++i) {
      const std::string v = (i == 10 || i == 25 || i == 40 ? "poison-" : "good-") + std::to_string(i);
      if (v.starts_with("good")) goods.insert(v);
      kv.emplace_back("k" + std::to_string(i % 7), v);
    }
    produce(broker.bootstrap(), topic, kv);
    const auto log = dir / (topic + ".log");
    std::vector<std::string> extra{"--kill-after-dlq"};
    if (control) extra.push_back("--any-dlq");
    {
      child_process first(child_argv(broker.bootstrap(), "g-" + topic, topic, log, extra));
      const int st = first.wait(30s);
      REQUIRE_MESSAGE(st != -1, "the first processor did not kill itself after a DLQ write");
      CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
    }
    REQUIRE(lines_of(log, 'D').size() == 1);
    const auto first_dlq = lines_of(log, 'D')[0];
    std::vector<std::string> again;
    if (control) again.push_back("--any-dlq");
    child_process second(child_argv(broker.bootstrap(), "g-" + topic, topic, log, again));
    // It handles the killed one's uncommitted records again: the DLQ write of
    // the record whose commit never came is a repeat.
    REQUIRE(eventually([&] { return lines_of(log, 'D').size() >= 4 && finished_values(log) == goods; }, 40s));
    CHECK(second.term() == 0);
    const auto d = lines_of(log, 'D');
    const auto source_of = [](const std::string& line) {  // "D p o ..." -> "p/o"
      std::istringstream in(line);
      std::string k, p, o;
      in >> k >> p >> o;
      return p + "/" + o;
    };
    bool repeat_seen = false;
    for (std::size_t i = 1; i < d.size(); ++i) {
      if (source_of(d[i]) == source_of(first_dlq)) repeat_seen = repeat_seen || d[i].ends_with(control ? " 0" : " 1");
    }
    CHECK(repeat_seen);
    const auto dlq = read_topic(broker.bootstrap(), topic + ".dlq");
    std::set<std::string> expected;
    for (const auto& line : d) expected.insert(source_of(line));
    CHECK(expected.size() == 3);
    std::string why;
    const bool one_each = exactly_one_copy_each(copies_per_source(dlq), expected, &why);
    if (control) {
      CHECK_MESSAGE(!one_each, "without a window the repeat must show: the checker can fail");
    } else {
      CHECK_MESSAGE(one_each, why);
    }
  }
}

TEST_CASE("dlq: a leader failover on the DLQ topic still leaves exactly one copy of each poisoned record") {
  runnel::testing::cluster_harness c(3, {"--set", "offsets.topic.num.partitions=2", "--set",
                                         "group.consumer.heartbeat.interval.ms=200"});
  auto a = connect_admin(c.bootstrap());
  REQUIRE(a->create_topic("pay", 1, 3, {{"min.insync.replicas", "2"}}).has_value());
  std::atomic<int> ok_calls{0};
  std::mutex mu;
  std::set<std::string> processed;
  auto cfg = base_config(c.bootstrap(), "g-pay", "pay");
  cfg.retry.max_attempts = 1;
  cfg.consumer.request_timeout = 10s;
  background_processor bp(cfg, [&](const record_view& r) {
    const std::string v(*r.value);
    if (v.starts_with("poison")) return process_result::permanent("poisoned");
    std::lock_guard lk(mu);
    processed.insert(v);
    ++ok_calls;
    return process_result::ok();
  });
  std::set<std::string> goods;
  std::vector<std::pair<std::string, std::string>> first_half, second_half;
  for (int i = 0; i < 200; ++i) {
    const std::string v = (i % 10 == 5 ? "poison-" : "good-") + std::to_string(i);
    if (v.starts_with("good")) goods.insert(v);
    (i < 100 ? first_half : second_half).emplace_back("k" + std::to_string(i % 13), v);
  }
  produce(c.bootstrap(), "pay", first_half);
  REQUIRE(eventually([&] { return bp.get().stats().dead_lettered == 10; }, 30s));
  // The DLQ topic's leader goes; poisons keep coming through the failover.
  auto t = a->describe_topic("pay.dlq");
  REQUIRE(t.has_value());
  CHECK(t->partitions[0].replicas.size() == 3);
  auto dc = a->describe_configs("pay.dlq");
  REQUIRE(dc.has_value());
  CHECK(dc->at("min.insync.replicas").value == "2");
  const auto old_leader = t->partitions[0].leader;
  c.kill9(old_leader);
  auto a2 = connect_admin(c.bootstrap());
  produce(c.bootstrap(), "pay", second_half);
  REQUIRE(eventually([&] { return bp.get().stats().dead_lettered >= 20; }, 60s));
  REQUIRE(eventually([&] {
    std::lock_guard lk(mu);
    return processed == goods;
  }, 60s));
  CHECK(bp.stop().has_value());
  c.start(old_leader);
  const auto dlq = read_topic(c.bootstrap(), "pay.dlq");
  const auto source = read_topic(c.bootstrap(), "pay");
  std::set<std::string> expected;
  for (const auto& r : source) {
    if (r.value.starts_with("poison")) expected.insert(std::to_string(r.partition) + "/" + std::to_string(r.offset));
  }
  CHECK(expected.size() == 20);
  std::string why;
  CHECK_MESSAGE(exactly_one_copy_each(copies_per_source(dlq), expected, &why), why);
}

TEST_CASE("dlq: runnelctl dlq list, inspect and replay, and a replay run twice sends each record once") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "offsets.topic.num.partitions=2"});
  auto a = connect_admin(broker.bootstrap());
  REQUIRE(a->create_topic("mail", 2).has_value());
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 40; ++i) kv.emplace_back("k" + std::to_string(i % 5), (i % 8 == 3 ? "poison-" : "good-") + std::to_string(i));
  produce(broker.bootstrap(), "mail", kv);
  {
    auto cfg = base_config(broker.bootstrap(), "g-mail", "mail");
    cfg.retry.max_attempts = 2;
    background_processor bp(cfg, [](const record_view& r) {
      return r.value->starts_with("poison") ? process_result::retry_later("cannot send " + std::string(*r.value))
                                            : process_result::ok();
    });
    REQUIRE(eventually([&] { return bp.get().stats().dead_lettered == 5; }, 30s));
    REQUIRE(bp.stop().has_value());
  }
  auto ctl = [&](const std::vector<std::string>& args) { return runnelctl(broker.bootstrap(), args); };
  // list: the DLQ topic, its records per partition.
  auto l = ctl({"dlq", "list"});
  REQUIRE(l.exit_code == 0);
  CHECK(l.out.find("mail.dlq") != std::string::npos);
  CHECK(l.out.find("mail ") == std::string::npos);  // the source topic is not a DLQ
  auto lj = ctl({"--json", "dlq", "list"});
  REQUIRE(lj.exit_code == 0);
  CHECK(lj.out.find("\"topic\":\"mail.dlq\"") != std::string::npos);
  const auto dlq = read_topic(broker.bootstrap(), "mail.dlq");
  REQUIRE(dlq.size() == 5);
  std::int64_t listed = 0;
  for (std::size_t pos = 0; (pos = lj.out.find("\"records\":", pos)) != std::string::npos; pos += 10) {
    listed += std::stoll(lj.out.substr(pos + 10));
  }
  CHECK(listed == 5);
  // inspect: every record with its failure headers; one by coordinates.
  auto ij = ctl({"--json", "dlq", "inspect", "mail.dlq"});
  REQUIRE(ij.exit_code == 0);
  CHECK(std::count(ij.out.begin(), ij.out.end(), '\n') == 5);
  CHECK(ij.out.find("\"error\":\"cannot send poison-3\"") != std::string::npos);
  CHECK(ij.out.find("\"attempts\":2") != std::string::npos);
  CHECK(ij.out.find("\"group\":\"g-mail\"") != std::string::npos);
  CHECK(ij.out.find("{\"key\":\"trace\"") != std::string::npos);
  auto one = ctl({"--json", "dlq", "inspect", "mail.dlq", "--partition", std::to_string(dlq[0].partition), "--offset",
                  std::to_string(dlq[0].offset)});
  REQUIRE(one.exit_code == 0);
  CHECK(std::count(one.out.begin(), one.out.end(), '\n') == 1);
  CHECK(one.out.find("\"value\":\"" + dlq[0].value + "\"") != std::string::npos);
  auto table = ctl({"dlq", "inspect", "mail.dlq", "--max-messages", "2"});
  REQUIRE(table.exit_code == 0);
  CHECK(std::count(table.out.begin(), table.out.end(), '\n') == 3);  // the header and two records
  CHECK(table.out.find("cannot send") != std::string::npos);

  // replay: a dry run sends nothing; --execute re-produces each record
  // once to its source partition without the failure headers; again: none.
  const auto before = read_topic(broker.bootstrap(), "mail").size();
  auto dry = ctl({"dlq", "replay", "mail.dlq"});
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.out.find("dry run") != std::string::npos);
  CHECK(read_topic(broker.bootstrap(), "mail").size() == before);
  auto run1 = ctl({"dlq", "replay", "mail.dlq", "--execute"});
  REQUIRE_MESSAGE(run1.exit_code == 0, run1.err);
  CHECK(run1.out.find("replayed 5 records") != std::string::npos);
  auto run2 = ctl({"dlq", "replay", "mail.dlq", "--execute"});
  REQUIRE_MESSAGE(run2.exit_code == 0, run2.err);
  CHECK(run2.out.find("replayed 0 records") != std::string::npos);
  const auto after = read_topic(broker.bootstrap(), "mail");
  REQUIRE(after.size() == before + 5);
  std::map<std::string, int> copies;
  for (const auto& r : after) ++copies[r.value];
  for (const auto& d : dlq) {
    CHECK(copies[d.value] == 2);  // the original and one replay
    bool found = false;
    for (const auto& r : after) {
      if (r.value != d.value || r.headers.contains(std::string(dlq_header::group)) == false) continue;
      found = true;  // a replayed copy must not carry failure headers
    }
    CHECK_FALSE(found);
    for (auto it = after.rbegin(); it != after.rend(); ++it) {
      if (it->value != d.value) continue;
      CHECK(it->partition == std::stoi(header_or(d, dlq_header::partition)));
      CHECK(it->key == d.key);
      CHECK(header_or(*it, "trace") == header_or(d, "trace"));
      break;
    }
  }
  // A replay to another topic, limited by offsets, keeps its own checkpoint.
  REQUIRE(a->create_topic("mail-retry", 1).has_value());
  auto part = ctl({"dlq", "replay", "mail.dlq", "--to", "mail-retry", "--partition", std::to_string(dlq[0].partition),
                   "--from", std::to_string(dlq[0].offset), "--until", std::to_string(dlq[0].offset + 1), "--execute"});
  REQUIRE_MESSAGE(part.exit_code == 0, part.err);
  CHECK(part.out.find("replayed 1 records") != std::string::npos);
  auto rest = ctl({"dlq", "replay", "mail.dlq", "--to", "mail-retry", "--execute"});
  REQUIRE(rest.exit_code == 0);
  CHECK(rest.out.find("replayed 4 records") != std::string::npos);
  CHECK(read_topic(broker.bootstrap(), "mail-retry").size() == 5);
}

TEST_CASE("dlq: error paths: no group, a DLQ topic that cannot be made or is unfit, bad runnelctl arguments") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "offsets.topic.num.partitions=2"});
  auto a = connect_admin(broker.bootstrap());
  REQUIRE(a->create_topic("src", 2).has_value());
  produce(broker.bootstrap(), "src", {{"a", "good-0"}, {"a", "poison-1"}, {"a", "good-2"}});
  {
    processor_config cfg;
    cfg.consumer.bootstrap = broker.bootstrap();
    cfg.topics = {"src"};
    auto p = processor::connect(cfg);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == make_error_code(errc::invalid_argument));
    cfg.consumer.group_id = std::string(250, 'g');
    p = processor::connect(cfg);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().what().find("too long for a DLQ message id") != std::string::npos);
  }
  auto poison_handler = [](const record_view& r) {
    return r.value->starts_with("poison") ? process_result::permanent("no") : process_result::ok();
  };
  struct unfit {
    std::string dlq;
    std::string says;
  };
  REQUIRE(a->create_topic("src-nw.dlq", 2).has_value());  // no window
  REQUIRE(a->create_topic("src-few.dlq", 1, 1, {{"dedup.window.ms", "60000"}}).has_value());
  for (const auto& u : {unfit{"bad name!", "cannot be created"}, unfit{"src-nw.dlq", "no message-id window"},
                        unfit{"src-few.dlq", "fewer than the 2"}}) {
    CAPTURE(u.dlq);
    auto cfg = base_config(broker.bootstrap(), "g-" + std::to_string(u.says.size()), "src");
    cfg.retry.dlq_topic = u.dlq;
    background_processor bp(cfg, poison_handler);
    REQUIRE(eventually([&] { return bp.finished(); }, 30s));
    auto r = bp.stop();
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(r.error().what().find(u.says) != std::string::npos, r.error().what());
    // Nothing past the poisoned record was committed.
    auto committed = a->committed_offsets("g-" + std::to_string(u.says.size()));
    REQUIRE(committed.has_value());
    for (const auto& [tp, o] : *committed) {
      const auto src = read_topic(broker.bootstrap(), "src");
      for (const auto& s : src) {
        if (s.value == "poison-1") CHECK(!(tp.partition == s.partition && o.offset > s.offset));
      }
    }
  }
  auto ctl = [&](const std::vector<std::string>& args) { return runnelctl(broker.bootstrap(), args); };
  auto one_line = [](const runnel::testing::command_result& r) {
    return std::count(r.err.begin(), r.err.end(), '\n') == 1 && r.out.empty();
  };
  for (const auto& bad : std::vector<std::vector<std::string>>{{"dlq"},
                                                               {"dlq", "purge"},
                                                               {"dlq", "inspect"},
                                                               {"dlq", "inspect", "src", "--offset", "3"},
                                                               {"dlq", "replay", "src", "--from", "yesterday"},
                                                               {"dlq", "list", "extra"}}) {
    auto r = ctl(bad);
    CHECK_MESSAGE(r.exit_code == 2, bad.back());
    CHECK(one_line(r));
  }
  auto unknown = ctl({"dlq", "inspect", "nope.dlq"});
  CHECK(unknown.exit_code == 1);
  CHECK(one_line(unknown));
  auto huge = ctl({"dlq", "inspect", "src", "--partition", "4294967296"});
  CHECK(huge.exit_code == 2);
  CHECK(one_line(huge));
  auto no_partition = ctl({"dlq", "inspect", "src", "--partition", "9", "--offset", "0"});
  CHECK(no_partition.exit_code == 1);
  CHECK(one_line(no_partition));
  auto far = ctl({"dlq", "inspect", "src", "--partition", "0", "--offset", "999"});
  CHECK(far.exit_code == 1);
  CHECK(one_line(far));
  auto no_target = ctl({"dlq", "replay", "src", "--to", "missing-topic", "--execute"});
  CHECK(no_target.exit_code == 1);
  CHECK(one_line(no_target));
}
