// runnelctl group and the admin SDK's group calls against a real broker:
// list, describe, lag, reset-offsets (plan and --execute, every form),
// delete, and every bad-argument path. Group state is made with member-less
// commits (admin::alter_group_offsets) and, for members, raw heartbeats.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "tests/support/broker_process.h"
#include "tests/support/heartbeat_member.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::command_result;
using runnel::testing::heartbeat_member;
using runnel::testing::run_command;
using runnel::testing::temp_dir;

namespace {

command_result ctl(const broker_process& b, std::vector<std::string> args) {
  std::vector<std::string> argv{RUNNELCTL_BIN, "--bootstrap", b.bootstrap()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

// Usage errors are found before connecting: nothing listens on port 1.
command_result ctl_offline(std::vector<std::string> args) {
  std::vector<std::string> argv{RUNNELCTL_BIN, "--bootstrap", "127.0.0.1:1"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

bool one_line(const std::string& s) {
  return std::count(s.begin(), s.end(), '\n') == 1;
}
bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::unique_ptr<admin> admin_for(const broker_process& b) {
  admin_config c;
  c.bootstrap = b.bootstrap();
  auto a = admin::connect(c);
  REQUIRE(a.has_value());
  return std::move(*a);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Produces `n` records to topic/partition with acks=all and waits for them.
void produce(const broker_process& b, const std::string& topic, std::int32_t partition, int n) {
  producer_config c;
  c.bootstrap = b.bootstrap();
  auto p = producer::connect(c);
  REQUIRE(p.has_value());
  for (int i = 0; i < n; ++i)
    (*p)->send_to(topic, partition, std::nullopt, "v" + std::to_string(i), {}, nullptr);
  REQUIRE((*p)->flush().has_value());
  (*p)->close();
}

offset_and_metadata at_offset(std::int64_t o) {
  offset_and_metadata m;
  m.offset = o;
  return m;
}

void commit(admin& a, const std::string& group,
            const std::map<topic_partition_ref, std::int64_t>& offsets) {
  std::map<topic_partition_ref, offset_and_metadata> m;
  for (const auto& [tp, o] : offsets) m[tp].offset = o;
  auto r = a.alter_group_offsets(group, m);
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
}

std::int64_t committed(admin& a, const std::string& group, const topic_partition_ref& tp) {
  auto c = a.committed_offsets(group, {tp});
  REQUIRE(c.has_value());
  auto it = c->find(tp);
  return it == c->end() ? -1 : it->second.offset;
}

// The number after "key": in the JSON object that starts at `from`.
double json_number(const std::string& json, const std::string& key, std::size_t from = 0) {
  auto at = json.find("\"" + key + "\":", from);
  REQUIRE(at != std::string::npos);
  return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
}

std::string iso_utc(std::int64_t ms) {
  const std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(ms % 1000));
  return buf;
}

}  // namespace

TEST_CASE("runnelctl group: list, describe and lag of groups with committed offsets") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("orders", 2).has_value());
  // orders/0: 3 records, then 5 more ~1.5 s later; orders/1: 4 records.
  produce(b, "orders", 0, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto before_second = now_ms();
  produce(b, "orders", 0, 5);
  const auto after_second = now_ms();
  produce(b, "orders", 1, 4);
  commit(*a, "g1", {{{"orders", 0}, 3}, {{"orders", 1}, 4}});
  commit(*a, "g2", {{{"orders", 0}, 0}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));

  auto r = ctl(b, {"group", "list"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "GROUP"));
  CHECK(has(r.out, "g1"));
  CHECK(has(r.out, "g2"));
  CHECK(has(r.out, "empty"));
  r = ctl(b, {"group", "list", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "{\"group_id\":\"g1\",\"state\":\"empty\","));
  CHECK(has(r.out, "\"members\":0}"));
  CHECK(r.out.find("\"g1\"") < r.out.find("\"g2\""));  // sorted

  // The SDK's view, judged against what we produced and committed.
  const auto t0 = now_ms();
  auto lag = a->group_lag("g1");
  const auto t1 = now_ms();
  REQUIRE(lag.has_value());
  REQUIRE(lag->size() == 2);
  const auto& p0 = (*lag)[0];
  CHECK(p0.partition == topic_partition_ref{"orders", 0});
  CHECK(p0.committed_offset == 3);
  CHECK(p0.log_end_offset == 8);
  CHECK(p0.lag == 5);
  // The first uncommitted record (offset 3) came with the second produce,
  // not the first (~1.5 s earlier): its age is bounded on both sides.
  CHECK(p0.lag_seconds >= (t0 - after_second) / 1000.0 - 0.01);
  CHECK(p0.lag_seconds <= (t1 - before_second) / 1000.0 + 0.01);
  CHECK(p0.owner.empty());
  const auto& p1 = (*lag)[1];
  CHECK(p1.committed_offset == 4);
  CHECK(p1.log_end_offset == 4);
  CHECK(p1.lag == 0);
  CHECK(p1.lag_seconds == 0.0);
  // Committed at 0: the age is the first produce's, older than the second's.
  auto lag2 = a->group_lag("g2");
  REQUIRE(lag2.has_value());
  REQUIRE(lag2->size() == 1);
  CHECK((*lag2)[0].lag == 8);
  CHECK((*lag2)[0].lag_seconds >= (t0 - before_second) / 1000.0 + 1.4);

  r = ctl(b, {"group", "lag", "g1", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out,
            "{\"group_id\":\"g1\",\"partitions\":[{\"topic\":\"orders\",\"partition\":0,"
            "\"committed_offset\":3,"
            "\"log_end_offset\":8,\"lag\":5,\"lag_seconds\":"));
  CHECK(has(
      r.out,
      "{\"topic\":\"orders\",\"partition\":1,\"committed_offset\":4,\"log_end_offset\":4,\"lag\":0,"
      "\"lag_seconds\":0.000,\"owner\":\"\"}"));
  CHECK(has(r.out, "\"total_lag\":5}"));
  const double secs = json_number(r.out, "lag_seconds");
  CHECK(secs >= 1.0);
  CHECK(secs < 1.5 + 60);
  r = ctl(b, {"group", "lag", "g1"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "LAG-SECONDS"));
  CHECK(has(r.out, "total lag: 5"));

  r = ctl(b, {"group", "describe", "g1"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "group g1\ntype: consumer\nstate: empty\ncoordinator: 0\n"));
  CHECK(has(r.out, "members: 0\n"));
  CHECK(has(r.out, "COMMITTED"));
  CHECK(has(r.out, "total lag: 5"));
  r = ctl(b, {"group", "describe", "g1", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "{\"group_id\":\"g1\",\"type\":\"consumer\",\"state\":\"empty\",\"coordinator\":0,"));
  CHECK(has(r.out,
            "\"members\":[],\"partitions\":[{\"topic\":\"orders\",\"partition\":0,\"committed_"
            "offset\":3,"));
  CHECK(has(r.out, "\"total_lag\":5}"));
  auto d = a->describe_group("g1");
  REQUIRE(d.has_value());
  CHECK(d->state == "empty");
  CHECK(d->coordinator == 0);
  CHECK(d->members.empty());
}

TEST_CASE(
    "runnelctl group: describe shows the members, lag their partitions, and members refuse reset "
    "and delete") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("orders", 2).has_value());
  produce(b, "orders", 0, 4);
  heartbeat_member m(b.port(), "live", {"orders"});
  REQUIRE(m.assignment().size() == 2);  // the only member gets both partitions

  auto r = ctl(b, {"group", "describe", "live"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "members: 1\n"));
  CHECK(has(r.out, "MEMBER-ID"));
  CHECK(has(r.out, m.id()));
  CHECK(has(r.out, "raw-test"));  // the member's client id
  CHECK(has(r.out, "127.0.0.1"));
  CHECK(has(r.out, "orders:0,1"));
  r = ctl(b, {"group", "describe", "live", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "\"member_id\":\"" + m.id() +
                       "\",\"instance_id\":\"\",\"client_id\":\"raw-test\","
                       "\"client_host\":\"127.0.0.1\",\"member_epoch\":" +
                       std::to_string(m.epoch())));
  CHECK(has(r.out,
            "\"assignment\":[{\"topic\":\"orders\",\"partition\":0},{\"topic\":\"orders\","
            "\"partition\":1}]"));
  CHECK(has(r.out, "\"subscribed_topics\":[\"orders\"]"));
  // Nothing committed: the partitions show with their owner and no lag.
  CHECK(has(r.out,
            "{\"topic\":\"orders\",\"partition\":0,\"committed_offset\":-1,\"log_end_offset\":4,"
            "\"lag\":-1,"
            "\"lag_seconds\":-1.000,\"owner\":\"" +
                m.id() + "\"}"));
  r = ctl(b, {"group", "lag", "live"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, m.id()));

  // A plan is fine; committing it while the member is there is not.
  r = ctl(b, {"group", "reset-offsets", "live", "--topic", "orders", "--to-earliest"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "dry run"));
  r = ctl(b, {"group", "reset-offsets", "live", "--topic", "orders", "--to-earliest", "--execute"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(has(r.err, "group live has active members"));
  CHECK(has(r.err, "group is not empty"));
  CHECK(committed(*a, "live", {"orders", 0}) == -1);
  auto refused = a->alter_group_offsets("live", {{{"orders", 0}, at_offset(1)}});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == errc::non_empty_group);
  r = ctl(b, {"group", "delete", "live"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(has(r.err, "group is not empty"));
  r = ctl(b, {"group", "list", "--json"});
  CHECK(has(r.out, "{\"group_id\":\"live\",\"state\":\"stable\","));
  CHECK(has(r.out, "\"members\":1}"));
}

TEST_CASE(
    "runnelctl group: reset-offsets prints a plan without --execute and commits it with "
    "--execute") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("events", 2).has_value());
  // events/0: offsets 0..3 before `middle`, 4..9 after; events/1: 0..5 after.
  produce(b, "events", 0, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto middle = now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  produce(b, "events", 0, 6);
  produce(b, "events", 1, 6);
  commit(*a, "g", {{{"events", 0}, 5}, {{"events", 1}, 2}});

  // Runs the plan, checks it changed nothing, executes it, checks the commits.
  auto reset = [&](std::vector<std::string> how, std::int64_t want0, std::int64_t want1) {
    const auto cur0 = committed(*a, "g", {"events", 0});
    const auto cur1 = committed(*a, "g", {"events", 1});
    std::vector<std::string> args{"group", "reset-offsets", "g", "--topic", "events", "--json"};
    args.insert(args.end(), how.begin(), how.end());
    auto r = ctl(b, args);
    CHECK(r.exit_code == 0);
    CHECK(r.out ==
          "{\"group_id\":\"g\",\"executed\":false,\"partitions\":["
          "{\"topic\":\"events\",\"partition\":0,\"current_offset\":" +
              std::to_string(cur0) + ",\"new_offset\":" + std::to_string(want0) +
              "},{\"topic\":\"events\",\"partition\":1,\"current_offset\":" + std::to_string(cur1) +
              ",\"new_offset\":" + std::to_string(want1) + "}]}\n");
    CHECK(committed(*a, "g", {"events", 0}) == cur0);
    CHECK(committed(*a, "g", {"events", 1}) == cur1);
    args.push_back("--execute");
    r = ctl(b, args);
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "\"executed\":true"));
    CHECK(committed(*a, "g", {"events", 0}) == want0);
    CHECK(committed(*a, "g", {"events", 1}) == want1);
  };
  SUBCASE("--to-earliest") {
    reset({"--to-earliest"}, 0, 0);
  }
  SUBCASE("--to-latest") {
    reset({"--to-latest"}, 10, 6);
  }
  SUBCASE("--to-offset, clamped to the log end") {
    reset({"--to-offset", "7"}, 7, 6);
  }
  SUBCASE("--to-datetime in UTC and with a zone") {
    reset({"--to-datetime", iso_utc(middle)}, 4, 0);
    reset({"--to-datetime", "2000-01-01T00:00:00+02:00"}, 0, 0);
    reset({"--to-datetime", "2999-01-01T00:00:00Z"}, 10, 6);
    reset({"--to-datetime", iso_utc(middle + 2 * 3'600'000).substr(0, 23) + "+02:00"}, 4, 0);
  }
  SUBCASE("--shift-by, clamped to the log") {
    reset({"--shift-by", "-2"}, 3, 0);
    reset({"--shift-by", "4"}, 7, 4);
    reset({"--shift-by", "100"}, 10, 6);
  }
  SUBCASE("the table for people") {
    auto r = ctl(b, {"group", "reset-offsets", "g", "--topic", "events", "--to-latest"});
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "TOPIC"));
    CHECK(has(r.out, "CURRENT"));
    CHECK(has(r.out, "dry run: nothing committed"));
    CHECK(committed(*a, "g", {"events", 0}) == 5);
    r = ctl(b, {"group", "reset-offsets", "g", "--topic", "events", "--to-latest", "--execute"});
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "committed 2 offsets for group g"));
    CHECK(committed(*a, "g", {"events", 0}) == 10);
  }
  SUBCASE("a new group is created by --execute") {
    auto r = ctl(b, {"group", "reset-offsets", "fresh", "--topic", "events", "--to-offset", "1",
                     "--execute"});
    CHECK(r.exit_code == 0);
    CHECK(committed(*a, "fresh", {"events", 1}) == 1);
    r = ctl(b, {"group", "list"});
    CHECK(has(r.out, "fresh"));
  }
}

TEST_CASE(
    "runnelctl group: delete removes the group and its offsets, describe then says not found") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("t", 1).has_value());
  produce(b, "t", 0, 2);
  commit(*a, "doomed", {{{"t", 0}, 1}});
  auto r = ctl(b, {"group", "delete", "doomed"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "deleted group doomed\n");
  for (const char* sub : {"describe", "lag", "delete"}) {
    r = ctl(b, {"group", sub, "doomed"});
    CHECK(r.exit_code == 1);
    CHECK(one_line(r.err));
    CHECK(r.err == "runnelctl: group not found: group doomed\n");
  }
  r = ctl(b, {"group", "list", "--json"});
  CHECK(r.out == "[]\n");
  CHECK(committed(*a, "doomed", {"t", 0}) == -1);
  commit(*a, "again", {{{"t", 0}, 1}});
  r = ctl(b, {"group", "delete", "again", "--json"});
  CHECK(r.out == "{\"deleted\":\"again\"}\n");
}

TEST_CASE("runnelctl group: an unknown group is one line and exit 1") {
  temp_dir dir;
  broker_process b(dir / "data");
  // No group ever: the offsets topic does not exist yet.
  auto r = ctl(b, {"group", "list", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "[]\n");
  for (const char* sub : {"describe", "lag", "delete"}) {
    r = ctl(b, {"group", sub, "nobody"});
    CHECK(r.exit_code == 1);
    CHECK(one_line(r.err));
    CHECK(has(r.err, "group not found"));
  }
  // And once other groups exist.
  auto a = admin_for(b);
  REQUIRE(a->create_topic("t", 1).has_value());
  commit(*a, "somebody", {{{"t", 0}, 0}});
  r = ctl(b, {"group", "describe", "nobody"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(has(r.err, "group not found"));
}

TEST_CASE("runnelctl group: usage errors are one line and exit 2, before connecting") {
  const std::vector<std::vector<std::string>> bad{
      {"group"},
      {"group", "frobnicate"},
      {"group", "list", "extra"},
      {"group", "describe"},
      {"group", "describe", "a", "b"},
      {"group", "lag"},
      {"group", "delete"},
      {"group", "describe", ""},
      {"group", "reset-offsets", "--topic", "t", "--to-earliest"},  // no group
      {"group", "reset-offsets", "g", "--to-earliest"},             // no --topic
      {"group", "reset-offsets", "g", "--topic", "t"},              // no --to-*
      {"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "1", "--shift-by", "1"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "1", "--to-offset", "2"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "abc"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "-1"},
      {"group", "reset-offsets", "g", "--topic", "t", "--shift-by", "1.5"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2024-13-01T00:00:00"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2023-02-29T00:00:00"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2024-01-01T25:00:00"},
      {"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2024-01-01T00:00:00+2"},
      {"group", "reset-offsets", "g", "--topic"},  // --topic without a value
  };
  for (const auto& args : bad) {
    auto r = ctl_offline(args);
    std::string cmd;
    for (const auto& s : args) cmd += s + " ";
    INFO(cmd);
    CHECK(r.exit_code == 2);
    CHECK(one_line(r.err));
    CHECK(has(r.err, "see runnelctl --help"));
  }
  auto r =
      ctl_offline({"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"});
  CHECK(has(r.err, "exactly one"));
  r = ctl_offline({"group", "reset-offsets", "g", "--to-earliest"});
  CHECK(has(r.err, "--topic"));
  r = ctl_offline({"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"});
  CHECK(has(r.err, "'yesterday'"));
  // A well-formed command does try to connect (the negative control).
  r = ctl_offline(
      {"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2024-02-29T12:30:00.5Z"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.err, "connection failed"));
}

TEST_CASE(
    "runnelctl group: reset-offsets of an unknown topic or a shift without a commit is one line "
    "and exit 1") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("t", 1).has_value());
  auto r = ctl(b, {"group", "reset-offsets", "g", "--topic", "missing", "--to-earliest"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(has(r.err, "unknown topic"));
  r = ctl(b, {"group", "reset-offsets", "g", "--topic", "t", "--shift-by", "1"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(has(r.err, "cannot shift t/0: group g has no committed offset there"));
}

TEST_CASE("admin: alter_group_offsets names the refused partition") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("t", 1).has_value());
  auto r = a->alter_group_offsets("g", {{{"t", 0}, at_offset(0)}, {{"t", 7}, at_offset(0)}});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::unknown_topic_or_partition);
  CHECK(has(r.error().what(), "t/7"));
  r = a->alter_group_offsets("g", {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
  auto c = a->committed_offsets("nobody");
  REQUIRE(c.has_value());
  CHECK(c->empty());
}

TEST_CASE("runnelctl consume --group: commits what it printed, the next run resumes there, lag ends at 0") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "group.consumer.heartbeat.interval.ms=200"});
  auto a = admin_for(b);
  REQUIRE(a->create_topic("cg", 2).has_value());
  produce(b, "cg", 0, 6);
  produce(b, "cg", 1, 4);
  auto first = ctl(b, {"consume", "cg", "--group", "printers", "--from-beginning", "--max-messages", "4"});
  CHECK(first.exit_code == 0);
  CHECK(std::count(first.out.begin(), first.out.end(), '\n') == 4);
  std::int64_t total = 0;
  for (int p = 0; p < 2; ++p) total += std::max<std::int64_t>(0, committed(*a, "printers", {"cg", p}));
  CHECK(total == 4);  // exactly what it printed, not the rest of that poll
  // --from-beginning: where a partition the first run never committed starts.
  auto rest = ctl(b, {"consume", "cg", "--group", "printers", "--from-beginning", "--exit-at-end"});
  CHECK(rest.exit_code == 0);
  CHECK(std::count(rest.out.begin(), rest.out.end(), '\n') == 6);
  auto lag = ctl(b, {"group", "lag", "printers", "--json"});
  CHECK(lag.exit_code == 0);
  CHECK(committed(*a, "printers", {"cg", 0}) == 6);
  CHECK(committed(*a, "printers", {"cg", 1}) == 4);
  auto bad = ctl(b, {"consume", "cg", "--group", "printers", "--partition", "0"});
  CHECK(bad.exit_code == 2);
  CHECK(one_line(bad.err));
}
