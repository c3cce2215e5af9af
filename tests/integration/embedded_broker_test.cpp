// The embedded test broker users put in their own integration tests, and the
// README's C++ example (built as runnel-quickstart) run against a real broker.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "runnel/testing/embedded_broker.h"
#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

using namespace runnel;

TEST_CASE("embedded broker: starts fast, serves, stops, restarts with its data") {
  const auto t0 = std::chrono::steady_clock::now();
  auto b = testing::EmbeddedBroker::start();
  REQUIRE(b.has_value());
  const auto started = std::chrono::steady_clock::now() - t0;
  CHECK(started < std::chrono::seconds(2));  // generous; typically a few ms
  admin_config ac;
  ac.bootstrap = (*b)->bootstrap();
  {
    auto a = admin::connect(ac);
    REQUIRE(a.has_value());
    REQUIRE((*a)->create_topic("e", 2).has_value());
    producer_config pc;
    pc.bootstrap = (*b)->bootstrap();
    pc.acks = -1;
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    REQUIRE((*p)->send("e", "k", "v").get().has_value());
  }
  (*b)->stop();
  CHECK_FALSE((*b)->running());
  CHECK_FALSE(admin::connect(ac).has_value());  // nothing listens now
  REQUIRE((*b)->restart().has_value());
  ac.bootstrap = (*b)->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  auto end0 = (*a)->list_offset("e", 0, latest_offset);
  auto end1 = (*a)->list_offset("e", 1, latest_offset);
  REQUIRE(end0.has_value());
  REQUIRE(end1.has_value());
  CHECK(*end0 + *end1 == 1);  // the acknowledged record survived the restart
}

TEST_CASE("embedded broker: delayed responses make client requests time out") {
  auto b = testing::EmbeddedBroker::start();
  REQUIRE(b.has_value());
  admin_config ac;
  ac.bootstrap = (*b)->bootstrap();
  ac.timeout = std::chrono::milliseconds(300);
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  (*b)->delay_responses(std::chrono::milliseconds(1000));
  auto r = (*a)->list_topics();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::timed_out);
  (*b)->delay_responses(std::chrono::milliseconds(0));
  CHECK((*a)->list_topics().has_value());  // reconnects and is served again
}

TEST_CASE("README: the C++ example is the one we build, and it runs") {
  std::ifstream readme(RUNNEL_SOURCE_DIR "/README.md");
  std::ifstream example(RUNNEL_SOURCE_DIR "/client/examples/quickstart.cpp");
  std::stringstream r, e;
  r << readme.rdbuf();
  e << example.rdbuf();
  REQUIRE_FALSE(e.str().empty());
  CHECK_MESSAGE(r.str().find(e.str()) != std::string::npos, "README.md must embed client/examples/quickstart.cpp verbatim");

  runnel::testing::temp_dir dir;
  runnel::testing::broker_process b(dir / "data");
  auto out = runnel::testing::run_command({RUNNEL_QUICKSTART_BIN, b.bootstrap()});
  CHECK(out.exit_code == 0);
  CHECK(out.out.find("hello, runnel") != std::string::npos);
}
