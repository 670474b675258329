# One long-lived Elixir node for an interop spec file (spec/interop/*_spec.lua),
# run from a compiled copy of the reference library:
#
#   MIX_ENV=test mix run --no-compile --no-start path/to/node.exs
#
# Line protocol on stdin/stdout, so the spec drives real PeerNet instances
# without paying for a VM start per step:
#   request:  one line, the hex of an Elixir snippet
#   answer:   "@@pn ok HEX" (the snippet's value: a binary as it is, any
#             other term as inspect/2 prints it) or "@@pn err HEX" (what it
#             raised). Lines without the prefix are the library's own output.
# Variables bound by one snippet are seen by the next (one binding for the
# whole run). End of stdin stops the node.

Logger.configure(level: :warning)
Logger.configure_backend(:console, device: :standard_error)
{:ok, _} = Application.ensure_all_started(:crypto)
Application.ensure_all_started(:logger)

defmodule PNI do
  @moduledoc false
  # Helpers the spec snippets call. Waiting is always on a condition with a
  # bound (the bound is a safety net, never an assertion about time).

  def unhex(h), do: Base.decode16!(h, case: :mixed)
  def hex(b), do: Base.encode16(b, case: :lower)

  # Starts (or restarts) a PeerNet instance; returns its hex key.
  def start(name, dir, port, opts \\ []) do
    stop(name)
    {:ok, _} = PeerNet.start_link([name: name, data_dir: dir, port: port] ++ opts)
    hex(PeerNet.identity(name).public)
  end

  def stop(name) do
    case Process.whereis(:"#{name}.sup") do
      nil -> :ok
      pid ->
        ref = Process.monitor(pid)
        Process.exit(pid, :shutdown)
        receive do
          {:DOWN, ^ref, _, _, _} -> :ok
        end
    end
  end

  def alive?(name), do: Process.whereis(:"#{name}.sup") != nil

  # Polls f until it returns a truthy value; that value, or :timeout.
  def wait(f, ms \\ 10_000) do
    deadline = System.monotonic_time(:millisecond) + ms
    wait_loop(f, deadline)
  end

  defp wait_loop(f, deadline) do
    case f.() do
      v when v not in [nil, false] ->
        v

      _ ->
        if System.monotonic_time(:millisecond) > deadline do
          :timeout
        else
          Process.sleep(5)
          wait_loop(f, deadline)
        end
    end
  end

  def connected?(name, key), do: PeerNet.connected?(name, unhex(key))

  def conn_pid(name, key) do
    case PeerNet.Registry.lookup_connection(:"#{name}.registry", unhex(key)) do
      {:ok, pid} -> pid
      _ -> nil
    end
  end

  # Dials through discovery (the registry records the address and redials).
  def announce(name, key, port) do
    PeerNet.Discovery.Manual.announce_peer(:"#{name}.discovery", unhex(key), %{
      ip: {127, 0, 0, 1},
      port: port,
      source: :manual
    })
  end

  # A store of what handlers received (sends, casts), by tag.
  def notes_start do
    case Agent.start(fn -> [] end, name: PNI.Notes) do
      {:ok, _} -> :ok
      {:error, {:already_started, _}} -> Agent.update(PNI.Notes, fn _ -> [] end)
    end
  end

  def note(v) do
    Agent.update(PNI.Notes, &[v | &1])
    :ok
  end

  def notes, do: Agent.get(PNI.Notes, &Enum.reverse/1)

  def add(a, b), do: a + b

  # Exact comparison: same term and same external format (tells -0.0 from 0.0).
  def same?(a, b), do: a === b and :erlang.term_to_binary(a) == :erlang.term_to_binary(b)

  # `total` calls of `handle` back to back; trigger.() runs after call `at`.
  # Returns the outcomes counted by shape.
  def stream(name, key, handle, total, at, trigger) do
    k = unhex(key)

    results =
      for i <- 1..total do
        if i == at + 1, do: trigger.()

        case PeerNet.call(name, k, handle, i, 2_000) do
          {:ok, ^i} -> :ok
          other -> other
        end
      end

    Enum.frequencies(results)
  end
end

defmodule PNI.Loop do
  @moduledoc false
  def run(binding) do
    case IO.gets("") do
      :eof ->
        System.halt(0)

      {:error, _} ->
        System.halt(0)

      line ->
        code = line |> String.trim() |> Base.decode16!(case: :mixed)

        {answer, binding} =
          try do
            {value, binding} = Code.eval_string(code, binding)
            {"ok " <> PNI.hex(render(value)), binding}
          rescue
            e -> {"err " <> PNI.hex(Exception.format(:error, e, __STACKTRACE__)), binding}
          catch
            kind, reason -> {"err " <> PNI.hex(Exception.format(kind, reason, __STACKTRACE__)), binding}
          end

        IO.write("@@pn " <> answer <> "\n")
        run(binding)
    end
  end

  defp render(v) when is_binary(v), do: v
  defp render(v), do: inspect(v, limit: :infinity, printable_limit: 4096)
end

# Instances are linked to this process: their crashes are messages, not our end.
Process.flag(:trap_exit, true)
IO.write("@@pn ready " <> PNI.hex(System.version()) <> "\n")
PNI.Loop.run([])
