// Entry point; the server wiring lands with the socket server.
return 0;
