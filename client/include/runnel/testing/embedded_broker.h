#pragma once
// runnel::testing::EmbeddedBroker: a real standalone broker inside the test
// process, on an ephemeral 127.0.0.1 port with its data in a fresh temp
// directory (removed at destruction), for users' own integration tests.
// Starts and stops in milliseconds. Fault hooks: stop(), restart() (same
// data, same port when it is still free) and delay_responses().
//
// Link target: runnel::embedded_broker (it contains the broker itself).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "runnel/errors.h"

namespace runnel::testing {

struct embedded_broker_options {
  unsigned shards = 2;
  std::map<std::string, std::string> config;  // broker keys, as with --set
};

class EmbeddedBroker {
 public:
  static result<std::unique_ptr<EmbeddedBroker>> start(embedded_broker_options options = {});
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;             // owns a broker
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;  // owns a broker
  EmbeddedBroker(EmbeddedBroker&&) = delete;                  // tests hold references
  EmbeddedBroker& operator=(EmbeddedBroker&&) = delete;       // tests hold references

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] std::string bootstrap() const;  // "127.0.0.1:<port>"
  // The temp directory it owns; the broker's data.dir is data_dir() / "data".
  [[nodiscard]] const std::filesystem::path& data_dir() const;
  [[nodiscard]] bool running() const;

  // Graceful stop: in-flight requests answered, logs flushed. Clients see
  // the connection close.
  void stop();
  // Starts again on the same data (and port, when it is still free).
  result<void> restart();
  // Every response waits `delay` before it is sent (0 turns it off).
  void delay_responses(std::chrono::milliseconds delay);

  struct impl;

 private:
  explicit EmbeddedBroker(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel::testing
