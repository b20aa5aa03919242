"""gateway/sim"""
