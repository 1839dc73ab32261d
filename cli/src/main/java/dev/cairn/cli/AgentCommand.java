package dev.cairn.cli;

import dev.cairn.agent.sidecar.SidecarMain;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

/**
 * {@code cairn agent}: the sidecar of one non-JVM trainer. {@link Main#main} hands {@code cairn agent
 * ...} straight to {@link SidecarMain}, which parses its own options; this command lists it in
 * {@code cairn --help} and answers {@code cairn help agent}, and runs the same code when called
 * through {@link Main#execute}.
 */
@Command(name = "agent", description = {
    "Run the local sidecar agent of one non-JVM (Python) trainer until its trainer disconnects.",
    "Options: --coordinator HOST:PORT --run-id RUN --rank I --world N --socket PATH "
            + "[--token T (default $CAIRN_TOKEN)] [--staging-mib M] [--parent-pid PID] [--storage URI] [--shm-dir DIR].",
    "See docs/python.md and docs/sidecar-protocol.md."})
final class AgentCommand implements Callable<Integer> {
    @Unmatched
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() {
        return SidecarMain.run(args.toArray(String[]::new), System.out, System.err);
    }
}
