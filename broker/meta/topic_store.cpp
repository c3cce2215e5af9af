#include "broker/meta/topic_store.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "broker/meta/topic_config.h"
#include "broker/storage/file.h"
#include "broker/storage/log_manager.h"
#include "schemas/crc32c.h"

namespace runnel::meta {

namespace {

constexpr std::string_view header_line = "runnel-topics 1";

std::uint32_t crc_of(std::string_view s) { return crc32c::value(std::as_bytes(std::span(s.data(), s.size()))); }

}  // namespace

topic_store::topic_store(std::filesystem::path file, topic_config defaults)
    : file_(std::move(file)), defaults_(defaults), topics_(std::make_shared<const topic_map>()) {}

bool topic_store::valid_topic_name(std::string_view name) { return storage::log_manager::valid_topic_name(name); }

std::expected<topic_store, error> topic_store::load(const std::filesystem::path& data_dir, topic_config defaults) {
  topic_store store(data_dir / "topics", defaults);
  std::ifstream in(store.file_, std::ios::binary);
  if (!in) {
    if (std::filesystem::exists(store.file_)) {
      return std::unexpected(error{errc::storage_failed, fmt::format("{}: cannot read", store.file_.string())});
    }
    return store;  // a fresh data directory
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  auto fail = [&](std::size_t line, std::string_view what) {
    return std::unexpected(error{errc::malformed_store, fmt::format("{}:{}: {}", store.file_.string(), line, what)});
  };
  const auto crc_at = text.rfind("crc32c ");
  if (crc_at == std::string::npos || (crc_at != 0 && text[crc_at - 1] != '\n')) return fail(0, "no checksum line");
  std::uint32_t stored = 0;
  if (std::sscanf(text.c_str() + crc_at, "crc32c %8x", &stored) != 1) return fail(0, "bad checksum line");
  if (stored != crc_of(std::string_view(text).substr(0, crc_at))) return fail(0, "checksum mismatch");

  auto map = std::make_shared<topic_map>();
  std::istringstream lines(text.substr(0, crc_at));
  std::string line;
  std::size_t n = 0;
  while (std::getline(lines, line)) {
    ++n;
    std::istringstream f(line);
    std::string kind, name;
    f >> kind;
    if (n == 1) {
      if (line != header_line) return fail(n, "not a runnel topics file");
      continue;
    }
    if (kind == "topic") {
      std::int32_t partitions = 0;
      if (!(f >> name >> partitions) || !valid_topic_name(name) || partitions < 1) return fail(n, "bad topic line");
      topic t;
      t.name = name;
      t.partitions = partitions;
      map->emplace(name, std::move(t));
    } else if (kind == "config") {
      std::string key, value;
      if (!(f >> name >> key >> value) || !map->contains(name)) return fail(n, "bad config line");
      map->find(name)->second.overrides[key] = value;
    } else {
      return fail(n, "unknown record");
    }
  }
  for (auto& [name, t] : *map) {
    auto cfg = resolve(defaults, t.overrides);
    if (!cfg) {
      return std::unexpected(error{errc::invalid_config, fmt::format("{}: topic {}: {}", store.file_.string(), name, cfg.error())});
    }
    t.config = *cfg;
  }
  store.topics_ = std::move(map);
  return store;
}

topic_change topic_store::change_to(std::shared_ptr<topic_map> next) const {
  std::string text(header_line);
  text += '\n';
  for (const auto& [name, t] : *next) {
    text += fmt::format("topic {} {}\n", name, t.partitions);
    for (const auto& [k, v] : t.overrides) text += fmt::format("config {} {} {}\n", name, k, v);
  }
  text += fmt::format("crc32c {:08x}\n", crc_of(text));
  return topic_change{std::move(next), std::move(text)};
}

error topic_store::write_failed(std::error_code ec) const {
  return error{errc::storage_failed, fmt::format("{}: {}", file_.string(), ec.message())};
}

std::expected<void, error> topic_store::write_and_commit(std::optional<topic_change> c) {
  if (!c) return {};
  if (auto ec = storage::write_file_atomic(file_, std::as_bytes(std::span(c->text.data(), c->text.size())))) {
    return std::unexpected(write_failed(ec));
  }
  commit(std::move(*c));
  return {};
}

std::expected<topic_config, error> validate_new_topic(const std::string& name, std::int32_t partitions,
                                                      const config_overrides& overrides, const topic_config& defaults) {
  if (!topic_store::valid_topic_name(name)) {
    return std::unexpected(error{errc::invalid_topic, fmt::format("'{}': names are 1-249 of [a-zA-Z0-9._-]", name)});
  }
  if (partitions < 1 || partitions > max_partitions) {
    return std::unexpected(
        error{errc::invalid_partitions, fmt::format("partitions must be in [1, {}], got {}", max_partitions, partitions)});
  }
  auto cfg = resolve(defaults, overrides);
  if (!cfg) return std::unexpected(error{errc::invalid_config, cfg.error()});
  return *cfg;
}

std::expected<topic_config, error> apply_config_changes(config_overrides& overrides, const config_overrides& changes,
                                                        const topic_config& defaults) {
  config_overrides next = overrides;
  for (const auto& [k, v] : changes) {
    if (v.empty()) {
      next.erase(k);
    } else {
      next[k] = v;
    }
  }
  auto cfg = resolve(defaults, next);
  if (!cfg) return std::unexpected(error{errc::invalid_config, cfg.error()});
  overrides = std::move(next);
  return *cfg;
}

std::expected<std::optional<topic_change>, error> topic_store::prepare_create(const std::string& name,
                                                                              std::int32_t partitions,
                                                                              std::int32_t replication,
                                                                              const config_overrides& overrides,
                                                                              bool validate_only) const {
  if (!valid_topic_name(name)) {
    return std::unexpected(error{errc::invalid_topic, fmt::format("'{}': names are 1-249 of [a-zA-Z0-9._-]", name)});
  }
  if (topics_->contains(name)) return std::unexpected(error{errc::topic_exists, fmt::format("topic {} already exists", name)});
  auto cfg = validate_new_topic(name, partitions, overrides, defaults_);
  if (!cfg) return std::unexpected(cfg.error());
  if (replication != 1) {
    return std::unexpected(error{errc::invalid_replication,
                                 fmt::format("replication factor {} needs cluster mode; a standalone broker has 1", replication)});
  }
  if (validate_only) return std::nullopt;
  auto next = std::make_shared<topic_map>(*topics_);
  topic t;
  t.name = name;
  t.partitions = partitions;
  t.overrides = overrides;
  t.config = *cfg;
  next->emplace(name, std::move(t));
  return change_to(std::move(next));
}

std::expected<topic_change, error> topic_store::prepare_remove(const std::string& name) const {
  if (!topics_->contains(name)) return std::unexpected(error{errc::unknown_topic, fmt::format("unknown topic {}", name)});
  auto next = std::make_shared<topic_map>(*topics_);
  next->erase(name);
  return change_to(std::move(next));
}

std::expected<std::optional<topic_change>, error> topic_store::prepare_alter(const std::string& name,
                                                                             const config_overrides& changes,
                                                                             bool validate_only) const {
  auto it = topics_->find(name);
  if (it == topics_->end()) return std::unexpected(error{errc::unknown_topic, fmt::format("unknown topic {}", name)});
  topic t = it->second;
  auto cfg = apply_config_changes(t.overrides, changes, defaults_);
  if (!cfg) return std::unexpected(cfg.error());
  if (validate_only) return std::nullopt;
  t.config = *cfg;
  auto next = std::make_shared<topic_map>(*topics_);
  (*next)[name] = std::move(t);
  return change_to(std::move(next));
}

std::expected<void, error> topic_store::create(const std::string& name, std::int32_t partitions,
                                               std::int32_t replication, const config_overrides& overrides,
                                               bool validate_only) {
  auto c = prepare_create(name, partitions, replication, overrides, validate_only);
  if (!c) return std::unexpected(c.error());
  return write_and_commit(std::move(*c));
}

std::expected<void, error> topic_store::remove(const std::string& name) {
  auto c = prepare_remove(name);
  if (!c) return std::unexpected(c.error());
  return write_and_commit(std::move(*c));
}

std::expected<void, error> topic_store::alter(const std::string& name, const config_overrides& changes,
                                              bool validate_only) {
  auto c = prepare_alter(name, changes, validate_only);
  if (!c) return std::unexpected(c.error());
  return write_and_commit(std::move(*c));
}

}  // namespace runnel::meta
