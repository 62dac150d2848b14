"""Short builders of IR expressions for tests that write IR by hand."""
from compiler import ir


def const(type_, value):
    return ir.Const(type=type_, value=value)


def var(*path, type_="text"):
    return ir.Var(type=type_, path=list(path))


def op(name, *args, type_="bool"):
    return ir.Op(type=type_, op=name, args=list(args))
