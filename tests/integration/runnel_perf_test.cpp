// runnel-perf against a real broker: its JSON line, the e2e warm-up and
// latency log, and its argument errors.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

#ifdef RUNNEL_PERF_BIN  // built with the benchmarks only

using runnel::testing::broker_process;
using runnel::testing::run_command;
using runnel::testing::temp_dir;

TEST_CASE("runnel-perf: e2e reports latency after its warm-up and logs every record") {
  temp_dir dir;
  broker_process b(dir / "data");
  const auto log = (dir / "latency.txt").string();
  // 6,000 records at 4,000/s: the first second (4,000 records) is warm-up.
  auto r =
      run_command({RUNNEL_PERF_BIN, "e2e", "--bootstrap", b.bootstrap(), "--topic",          "lat",
                   "--partitions",  "2",   "--records",   "6000",        "--rate",           "4000",
                   "--acks",        "all", "--linger-ms", "1",           "--warmup-seconds", "1",
                   "--latency-log", log});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("\"records\":6000") != std::string::npos);
  CHECK(r.out.find("\"failed\":0") != std::string::npos);
  CHECK(r.out.find("\"warmup_records\":4000") != std::string::npos);
  CHECK(r.out.find("\"measured\":2000") != std::string::npos);
  CHECK(r.out.find("\"ack_p99_ms\":") != std::string::npos);
  CHECK(r.out.find("\"send_lag_p99_ms\":") != std::string::npos);
  CHECK(r.out.find("\"host_steal_ms\":") != std::string::npos);

  std::ifstream in(log);
  std::string header;
  std::getline(in, header);
  CHECK(header == "record partition offset e2e_ms ack_ms send_lag_ms");
  int rows = 0;
  int unmeasured = 0;
  for (std::string line; std::getline(in, line); ++rows) {
    std::istringstream f(line);
    long long record = -1, offset = -1;
    int partition = -1;
    double e2e = -1, ack = -1, lag = -1;
    f >> record >> partition >> offset >> e2e >> ack >> lag;
    CHECK(record == rows);
    if (partition < 0 || offset < 0 || e2e < 0 || ack < 0 || lag < 0) ++unmeasured;
  }
  CHECK(rows == 6000);
  CHECK(unmeasured == 0);  // every record was acknowledged and consumed
}

TEST_CASE("runnel-perf: produce prints one JSON line with the records it sent") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto r = run_command({RUNNEL_PERF_BIN, "produce", "--bootstrap", b.bootstrap(), "--topic", "tp",
                        "--partitions", "3", "--records", "20000", "--acks", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("{\"mode\":\"produce\"") == 0);
  CHECK(r.out.find("\"records\":20000") != std::string::npos);
}

TEST_CASE("runnel-perf: bad arguments exit 2 with one clear line") {
  struct bad_case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {{"fly"}, "unknown mode 'fly'"},
      {{"e2e", "--warmup-seconds", "1"}, "--warmup-seconds needs e2e with --rate"},
      {{"produce", "--latency-log", "/tmp/x"}, "--latency-log is for e2e"},
      {{"e2e", "--record-size", "8"}, "e2e needs --record-size >= 16"},
      {{"produce", "--records", "-5"}, "--records must be a non-negative integer"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{RUNNEL_PERF_BIN};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run_command(argv);
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(r.err.find("runnel-perf: " + c.message) == 0, r.err);
  }
}

#endif  // RUNNEL_PERF_BIN
