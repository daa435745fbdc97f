// run_to_completion: for unit tests of coroutine services, and for start-up work that must end
// before anything is served. Spawns one coroutine on an io_context and runs the context until it
// and everything it started have finished; returns its result or rethrows what it threw.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace herald {

template <class T>
T run_to_completion(boost::asio::io_context& io, boost::asio::awaitable<T> op) {
  std::optional<T> out;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, std::move(op), [&out, &failure](std::exception_ptr e, T value) {
    failure = e;
    if (!e) out.emplace(std::move(value));
  });
  io.restart();
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(out.value());
}

}  // namespace herald
