// commands.mjs: the protocol that the Python harness speaks with driver.mjs and
// bystander.mjs: one JSON command a line on stdin, one JSON answer a line on stdout.

import readline from "node:readline";

/** Write one answer line for the harness. */
export function send(answer) {
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}

/** Run the harness's commands one at a time until it says exit or closes stdin. */
export async function serveCommands(commands) {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const command = JSON.parse(line);
    if (command.do === "exit") break;
    try {
      send({ done: command.do, ...(await commands[command.do](command)) });
    } catch (error) {
      send({ error: `${command.do}: ${error.message}` });
    }
  }
  process.exit(0); // open sockets and timers would keep the process alive
}
