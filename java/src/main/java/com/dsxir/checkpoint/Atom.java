package com.dsxir.checkpoint;

import java.util.Objects;

/**
 * A symbol (an Elixir atom): a name that is not a string. It maps to a Term's {@code atom_value};
 * {@code new Atom("ok")} and {@code "ok"} are different Terms.
 *
 * @param name the atom's name
 */
public record Atom(String name) {
  /** An atom named {@code name} (not null). */
  public Atom {
    Objects.requireNonNull(name, "an Atom's name must not be null");
  }

  /** {@code :name}, as Elixir writes it. */
  @Override
  public String toString() {
    return ":" + name;
  }
}
