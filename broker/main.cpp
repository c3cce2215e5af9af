// runnel-broker: the Runnel server (standalone mode).
//
//   runnel-broker [--config FILE] [--set key=value]... [--data-dir DIR]
//                 [--listen HOST:PORT] [--shards N]
//
// Prints "runnel-broker listening on HOST:PORT" on stdout once it serves.
// SIGTERM/SIGINT: stop accepting, answer requests already read, flush and
// close every log, exit 0. Bad arguments or config: one line on stderr, exit 2.

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "broker/config.h"
#include "broker/net/server.h"

namespace {

constexpr const char* usage =
    "usage: runnel-broker [--config FILE] [--set key=value]... [--data-dir DIR] [--listen HOST:PORT] [--shards N]\n"
    "                     [--zookeeper HOST:PORT[/CHROOT] --broker-id N [--rack R]]\n"
    "       (docs/operations.md lists every config key)\n";

int fail(const std::string& msg, int code = 2) {
  std::fprintf(stderr, "runnel-broker: %s\n", msg.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  runnel::broker_config cfg;
  std::vector<std::pair<std::string, std::string>> sets;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    const char* v = nullptr;
    if (a == "--config" || a == "--set" || a == "--data-dir" || a == "--listen" || a == "--shards" ||
        a == "--zookeeper" || a == "--broker-id" || a == "--rack") {
      v = value(a);
      if (v == nullptr) return fail(std::string(a) + " needs a value");
    } else {
      std::fputs(usage, stderr);
      return fail("unknown argument '" + std::string(a) + "'");
    }
    if (a == "--config") {
      config_file = v;
    } else if (a == "--set") {
      std::string_view kv = v;
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) return fail("--set expects key=value, got '" + std::string(kv) + "'");
      sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "--data-dir") {
      sets.emplace_back("data.dir", v);
    } else if (a == "--listen") {
      sets.emplace_back("listen", v);
    } else if (a == "--shards") {
      sets.emplace_back("shards", v);
    } else if (a == "--zookeeper") {
      sets.emplace_back("zookeeper", v);
    } else if (a == "--broker-id") {
      sets.emplace_back("broker.id", v);
    } else if (a == "--rack") {
      sets.emplace_back("rack", v);
    }
  }
  if (!config_file.empty()) {
    if (auto r = cfg.load_file(config_file); !r) return fail(r.error());
  }
  for (const auto& [k, v] : sets) {
    if (auto r = cfg.set(k, v); !r) return fail(r.error());
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("main"));  // stdout carries only the "listening" line
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");

  // Signals are blocked for the shard threads (they inherit this mask);
  // the main thread waits for them through Asio.
  asio::io_context signals_io;
  asio::signal_set signals(signals_io, SIGTERM, SIGINT);
  std::signal(SIGPIPE, SIG_IGN);
  // Every connection and log segment is a descriptor: take the hard limit
  // (max.connections bounds the connections below it).
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    const auto was = fds.rlim_cur;
    fds.rlim_cur = fds.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &fds) == 0) spdlog::info("open files limit raised from {} to {}", was, fds.rlim_max);
  }

  auto server = runnel::net::server::start(cfg);
  if (!server) return fail(server.error().message, 1);
  std::printf("runnel-broker listening on %s:%u\n", cfg.listen_host.c_str(), static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);

  signals.async_wait([&](const std::error_code&, int sig) {
    spdlog::info("signal {}: shutting down", sig);
    (*server)->stop();
  });
  signals_io.run();
  server->reset();
  return 0;
}
