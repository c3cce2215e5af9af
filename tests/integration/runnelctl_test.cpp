// runnelctl against a real broker: the user-visible commands and their errors.

#include <doctest/doctest.h>

#include <algorithm>

#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

using namespace runnel::testing;

namespace {

command_result ctl(const broker_process& b, std::vector<std::string> args, const std::string& input = {}) {
  std::vector<std::string> argv{RUNNELCTL_BIN, "--bootstrap", b.bootstrap()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, input);
}

}  // namespace

TEST_CASE("runnelctl: create, list, produce, consume, describe, alter, delete") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto r = ctl(b, {"topic", "create", "events", "--partitions", "3", "--config", "retention.ms=60000"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("created topic events") != std::string::npos);
  r = ctl(b, {"topic", "list", "--json"});
  CHECK(r.out == "[{\"name\":\"events\",\"partitions\":3}]\n");
  r = ctl(b, {"produce", "events", "--key-separator", ":", "--acks", "all"}, "a:1\nb:2\nc:3\nd:4\n");
  CHECK(r.exit_code == 0);
  CHECK(r.err == "produced 4 records to events\n");
  r = ctl(b, {"consume", "events", "--from-beginning", "--exit-at-end", "--format", "%k=%v\\n"});
  CHECK(r.exit_code == 0);
  for (const char* kv : {"a=1\n", "b=2\n", "c=3\n", "d=4\n"}) CHECK(r.out.find(kv) != std::string::npos);
  r = ctl(b, {"consume", "events", "--from-beginning", "--max-messages", "2"});
  CHECK(r.exit_code == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
  r = ctl(b, {"topic", "describe", "events", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"retention.ms\":\"60000\"") != std::string::npos);
  CHECK(r.out.find("\"partition\":2") != std::string::npos);
  CHECK(r.out.find("\"size_bytes\":") != std::string::npos);
  r = ctl(b, {"topic", "alter", "events", "--config", "retention.ms="});
  CHECK(r.exit_code == 0);
  r = ctl(b, {"topic", "describe", "events"});
  CHECK(r.out.find("retention.ms=604800000") != std::string::npos);
  r = ctl(b, {"cluster", "--json"});
  CHECK(r.out.find("\"mode\":\"standalone\"") != std::string::npos);
  CHECK(r.out.find("\"port\":" + std::to_string(b.port())) != std::string::npos);
  r = ctl(b, {"topic", "delete", "events"});
  CHECK(r.exit_code == 0);
  r = ctl(b, {"topic", "list"});
  CHECK(r.out.find("events") == std::string::npos);
}

TEST_CASE("runnelctl: errors are one line and a non-zero exit") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto one_line = [](const command_result& r) { return std::count(r.err.begin(), r.err.end(), '\n') == 1; };
  auto r = ctl(b, {"topic", "describe", "missing"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r));
  CHECK(r.err.find("unknown topic") != std::string::npos);
  r = ctl(b, {"topic", "create", "x"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--partitions") != std::string::npos);
  r = ctl(b, {"topic", "create", "x", "--partitions", "many"});
  CHECK(r.exit_code == 2);
  r = ctl(b, {"frobnicate"});
  CHECK(r.exit_code == 2);
  CHECK(one_line(r));
  r = ctl(b, {"produce", "missing"}, "x\n");
  CHECK(r.exit_code == 1);
  CHECK(one_line(r));
  r = ctl(b, {"topic", "create", "x", "--partitions", "1", "--config", "nonsense"});
  CHECK(r.exit_code == 2);
  r = ctl(b, {"topic", "create", "x", "--partitions", "1", "--config", "segment.bytes=1"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("segment.bytes") != std::string::npos);
  // Usage errors are found before connecting.
  r = run_command({RUNNELCTL_BIN, "--bootstrap", "127.0.0.1:1", "consume", "t", "--offset", "5"});
  CHECK(r.exit_code == 2);
  r = run_command({RUNNELCTL_BIN, "--bootstrap", "127.0.0.1:1", "topic", "list"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r));
  CHECK(r.err.find("connection failed") != std::string::npos);
}

TEST_CASE("runnel-broker: bad arguments and config are one line and exit 2") {
  temp_dir dir;
  auto r = run_command({RUNNEL_BROKER_BIN, "--bogus"});
  CHECK(r.exit_code == 2);
  r = run_command({RUNNEL_BROKER_BIN, "--data-dir", (dir / "d").string(), "--set", "shards=zero"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("shards") != std::string::npos);
  r = run_command({RUNNEL_BROKER_BIN, "--config", (dir / "missing.conf").string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("missing.conf") != std::string::npos);
}
