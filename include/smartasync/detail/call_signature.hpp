// smartasync/detail/call_signature.hpp - a callable's one parameter list, when it has one.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_SIGNATURE_HPP
#define SMARTASYNC_DETAIL_CALL_SIGNATURE_HPP

#include "smartasync/config.hpp"

#include <stop_token>
#include <type_traits>

namespace SMARTASYNC_NAMESPACE {
namespace detail {

template <typename... P>
struct param_list {};

// What a wrapper's sync form can be declared to take. Known for function pointers and for
// classes with exactly one non-template `operator() const` (lambdas without auto parameters,
// std::function): then the sync form is a plain function of those parameters, which leaves
// room for a defaulted source_location after them, naming the call expression in reports.
// Unknown for generic or overloaded callables, whose arguments must be deduced: a default
// argument cannot follow a deduced pack.
struct unknown_signature {
  static constexpr bool known = false;
};

template <typename R, typename... P>
struct known_signature {
  static constexpr bool known = true;
  using result = R;
  using params = param_list<P...>;
};

template <typename MemberPointer>
struct member_call_signature : unknown_signature {};
// Only const call operators: the callable is invoked through a const reference, and a mutable
// one is refused with its own message by the generic form.
template <typename R, typename C, typename... P>
struct member_call_signature<R (C::*)(P...) const> : known_signature<R, P...> {};
template <typename R, typename C, typename... P>
struct member_call_signature<R (C::*)(P...) const noexcept> : known_signature<R, P...> {};
template <typename R, typename C, typename... P>
struct member_call_signature<R (C::*)(P...) const&> : known_signature<R, P...> {};
template <typename R, typename C, typename... P>
struct member_call_signature<R (C::*)(P...) const & noexcept> : known_signature<R, P...> {};

template <typename F>
struct call_signature : unknown_signature {};
template <typename R, typename... P>
struct call_signature<R (*)(P...)> : known_signature<R, P...> {};
template <typename R, typename... P>
struct call_signature<R (*)(P...) noexcept> : known_signature<R, P...> {};
template <typename F>
  requires(std::is_class_v<F> && requires { &F::operator(); })
struct call_signature<F> : member_call_signature<decltype(&F::operator())> {};

// The parameters a sync caller passes: a leading std::stop_token is the wrapper's to supply.
template <typename List>
struct caller_params {
  using type = List;
};
template <typename First, typename... P>
  requires std::is_same_v<std::remove_cvref_t<First>, std::stop_token>
struct caller_params<param_list<First, P...>> {
  using type = param_list<P...>;
};

// The sync form's parameter list, or void when the signature is unknown.
template <typename F>
struct sync_params {
  using type = void;
};
template <typename F>
  requires call_signature<F>::known
struct sync_params<F> {
  using type = typename caller_params<typename call_signature<F>::params>::type;
};
template <typename F>
using sync_params_t = typename sync_params<F>::type;

template <typename List>
inline constexpr bool forwardable_v = false;
// A by-value parameter is taken by the sync form and moved on to the callable.
template <typename... P>
inline constexpr bool forwardable_v<param_list<P...>> =
    ((std::is_reference_v<P> || std::is_move_constructible_v<P>) && ...);

// Whether the sync form can name its call expression (see sync_call_operator).
template <typename F>
inline constexpr bool located_calls_v = forwardable_v<sync_params_t<F>>;

} // namespace detail
} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CALL_SIGNATURE_HPP
