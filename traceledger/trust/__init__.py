"""Who may say what about whose goods: the entitlement rules, in one pure place.

Everything a registered enterprise signs is logged, as evidence of who said what. What
answers *believe* (status, producer, the lot of a serial, what a trace follows) is
decided here, from the signer, the goods' GS1 company prefix owner, delegations, the
authority role and custody as the log itself records it. Lookups, traces, recalls, port
sampling, exports, recall notices and the offline `verify-history` all call this
package, so the server and an auditor reach the same verdicts. docs/trust.md is the
table these modules implement.
"""
