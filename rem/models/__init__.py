"""Neural network components: tokenizer, LPIPS, world models, actor-critics, agent."""
