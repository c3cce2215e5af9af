#pragma once
// strong<T, Tag>: a value of T that only converts explicitly, so an offset,
// a file position and a partition id cannot be mixed up by accident.

#include <compare>
#include <cstddef>
#include <functional>

#include <fmt/format.h>

namespace runnel {

template <class T, class Tag>
class strong {
 public:
  using value_type = T;

  constexpr strong() = default;
  constexpr explicit strong(T v) : v_(v) {}

  [[nodiscard]] constexpr T value() const { return v_; }

  constexpr auto operator<=>(const strong&) const = default;

  // Moving a position by a distance keeps its type; the distance between two
  // positions is a plain number.
  constexpr strong operator+(T d) const { return strong(v_ + d); }
  constexpr strong operator-(T d) const { return strong(v_ - d); }
  constexpr T operator-(strong o) const { return v_ - o.v_; }
  constexpr strong& operator+=(T d) {
    v_ += d;
    return *this;
  }

 private:
  T v_{};
};

}  // namespace runnel

template <class T, class Tag>
struct std::hash<runnel::strong<T, Tag>> {
  std::size_t operator()(runnel::strong<T, Tag> s) const noexcept { return std::hash<T>{}(s.value()); }
};

template <class T, class Tag>
struct fmt::formatter<runnel::strong<T, Tag>> : fmt::formatter<T> {
  auto format(runnel::strong<T, Tag> s, fmt::format_context& ctx) const {
    return fmt::formatter<T>::format(s.value(), ctx);
  }
};
